"""``affinegan prepare --trim``: where a clip's expression starts and peaks, and how much the
head moves, from the 68 face landmarks of every frame (no pixels).

Head motion is taken out first (frames aligned on landmarks an expression barely moves); the
expression is then the main direction of the remaining landmark change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_EXPRESSION = 0.012  # --trim: least mean landmark change (inter-ocular units) worth trimming
MIN_SHARE = 0.4  # --trim: least share of landmark change along the expression's one direction
MAX_HEAD = 0.35  # --trim: the first frames must lie this near one end of the expression axis
# Landmarks that an expression barely moves (nose, eye corners): aligning on them removes
# head motion before expression change is measured.
RIGID = [27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45]


def similarity(src: np.ndarray, ref: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale, rotation and translation mapping points ``src`` best onto ``ref`` (least squares,
    no reflection): ``scale * src @ rot + shift``."""
    src_c, ref_c = src - src.mean(0), ref - ref.mean(0)
    u, sig, vt = np.linalg.svd(src_c.T @ ref_c)
    d = np.array([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = (u * d) @ vt
    scale = float((sig * d).sum() / (src_c**2).sum())
    return scale, rot, ref.mean(0) - scale * src.mean(0) @ rot


def _aligned(points: np.ndarray) -> np.ndarray:
    """``(N, 68, 2)`` landmarks mapped onto frame 0 by the similarity that best aligns their
    rigid points, so head motion does not count as expression change."""
    ref = points[0][RIGID]
    out = np.empty_like(points, dtype=np.float64)
    for t, p in enumerate(points):
        scale, rot, shift = similarity(p[RIGID], ref)
        out[t] = scale * p @ rot + shift
    return out


def _eye_distance(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[36] - points[45]))  # outer eye corners


@dataclass(frozen=True)
class HeadMotion:
    """How much the head moves over a clip (5th-95th percentile spreads), from the rigid
    landmarks rather than the detector's boxes, which jump between pyramid scales."""

    shift: float  # of the rigid points' centre, in face sizes
    zoom: float  # relative change of the face's scale
    roll: float  # in-plane rotation, degrees
    turn: float  # rigid points' misfit after alignment (nodding, shaking), in eye distances

    def too_much(self) -> bool:
        return self.shift > 0.1 or self.zoom > 0.15 or self.roll > 8 or self.turned()

    def turned(self) -> bool:
        """Motion a 2D alignment cannot undo (``prepare`` aligns the rest away)."""
        return self.turn > 0.05


def head_motion(points: np.ndarray, face_size: float) -> HeadMotion:
    """Measure the head motion of an ``(N, 68, 2)`` landmark track."""
    ref = points[0][RIGID]
    centres, zooms, rolls, turns = [], [], [], []
    for p in points:
        scale, rot, shift = similarity(p[RIGID], ref)
        centres.append(p[RIGID].mean(0))
        zooms.append(1 / scale)
        rolls.append(np.degrees(np.arctan2(rot[0, 1], rot[0, 0])))
        misfit = np.linalg.norm(scale * p[RIGID] @ rot + shift - ref, axis=1).mean()
        turns.append(misfit / _eye_distance(points[0]))

    def spread(v: list | np.ndarray) -> float:
        lo, hi = np.percentile(np.asarray(v), [5, 95], axis=0)
        return float(np.max(hi - lo))

    return HeadMotion(
        spread(centres) / face_size, spread(zooms), spread(rolls), float(np.percentile(turns, 95))
    )


def _expression_score(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Each frame's position along the clip's main direction of landmark change, in [0, 1], and
    the share of change that direction explains.

    Coordinates are weighted by how smooth their motion is (1 - frame-to-frame jitter / total
    variance), so the jaw line and other points the detector fits noisily do not outvote the
    mouth, brows and eyelids that carry the expression.
    """
    flat = x.reshape(len(x), -1)
    centred = flat - flat.mean(0)
    jitter = np.square(np.diff(flat, axis=0)).mean(0) / 2
    weighted = centred * np.clip(1 - jitter / np.maximum(centred.var(0), 1e-12), 0, None)
    _, sv, vt = np.linalg.svd(weighted, full_matrices=False)
    score = weighted @ vt[0]
    return (score - score.min()) / np.ptp(score), float(sv[0] ** 2 / (sv**2).sum())


def neutral_to_peak(points: np.ndarray) -> tuple[int, int] | str:
    """``(neutral, peak)`` frame indices of an ``(N, 68, 2)`` landmark track, or the reason why
    they cannot be told apart.

    Frames are scored along the main direction of expression change (``_expression_score``);
    the end of that axis nearer the clip's first frames is neutral. The peak is the highest
    score, the neutral frame the lowest before it; both grow over neighbours within the noise,
    the neutral frame back to the earliest and the peak on to the last, because a detector
    barely sees a faint expression, so near-neutral and near-peak frames score alike.
    """
    x = _aligned(np.asarray(points, np.float64))
    x /= _eye_distance(x[0])
    if np.linalg.norm(x - x[0], axis=2).mean(1).max() < MIN_EXPRESSION:
        return "the face barely changes"
    score, share = _expression_score(x)
    if share < MIN_SHARE:
        return f"the landmarks change in several ways at once ({share:.0%} along the main one)"
    head = float(score[:3].mean())
    if head > 0.5:
        score, head = 1 - score, 1 - head
    if head > MAX_HEAD:
        return "the clip starts halfway between neutral and peak"
    # A running median of three frames overrides single-frame detector failures; what it
    # removes measures the noise.
    padded = np.concatenate([score[:1], score, score[-1:]])
    smooth = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    tol = max(0.05, 4 * 1.4826 * float(np.median(np.abs(score - smooth))))
    score = smooth
    peak = int(np.argmax(score))
    neutral = int(np.argmin(score[: peak + 1]))
    while neutral > 0 and score[neutral - 1] <= score[neutral] + tol:
        neutral -= 1
    while peak < len(score) - 1 and score[peak + 1] >= score[peak] - tol:
        peak += 1
    return neutral, peak
