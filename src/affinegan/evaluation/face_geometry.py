"""A real face's expression measured on the face itself: dlib's 68 landmarks, identity and
sharpness, each generated change set against the real expression's change.

Pixel figures cannot tell a smile from a blurred redraw of the face, and the synthetic faces'
true intensities do not exist for real photos. What a real neutral + peak pair does give is
the truth's geometry: how much wider the mouth, how much higher its corners, how open it is,
how the eyes and brows move. Each measure is taken in the face's own frame (rotated so the
outer eye corners lie level) in units of the outer-eye-corner distance, so head size and roll
do not count, and reported as ``(generated peak - input) / (truth peak - input)``: 1 is as
much as the real expression, 0 none, negative the wrong way. A measure the truth barely moves
(``MIN_CHANGE``) has no ratio: dividing by noise says nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

MEASURES = ("mouth_width", "corner_lift", "mouth_opening", "eye_opening", "brow_height")
# Least |truth change| (eye distances) for a ratio; an open-mouthed (toothy) smile parts the
# inner lips by more than OPEN_MOUTH.
MIN_CHANGE = 0.01
OPEN_MOUTH = 0.05
LANDMARK_SIDE = 512  # frames are enlarged to this side before detection (dlib finds ~80 px up)
SHARPNESS_SIDE = 256  # the face's sharpness is measured at this frame side


def _level(points: np.ndarray) -> tuple[np.ndarray, float]:
    """``points`` rotated so the outer eye corners (36, 45) lie level, and their distance."""
    p = np.asarray(points, np.float64)
    dx, dy = p[45] - p[36]
    c, s = np.cos(-np.arctan2(dy, dx)), np.sin(-np.arctan2(dy, dx))
    return p @ np.array([[c, s], [-s, c]]), float(np.hypot(dx, dy))


def measures(points: np.ndarray) -> dict[str, float]:
    """The five expression measures of one face's (68, 2) landmarks, in eye distances.

    Image y grows downwards, so lifts and heights are differences ``upper - lower`` in y
    turned positive upwards.
    """
    p, eye = _level(points)
    lip_centre = (p[62] + p[66]) / 2  # between the inner lips: stays put as the mouth opens
    eyes_y = (p[36:42, 1].mean(), p[42:48, 1].mean())
    return {
        "mouth_width": float(np.linalg.norm(p[54] - p[48])) / eye,
        "corner_lift": float(lip_centre[1] - (p[48, 1] + p[54, 1]) / 2) / eye,
        "mouth_opening": float(p[66, 1] - p[62, 1]) / eye,
        "eye_opening": float(np.mean([p[41, 1] - p[37, 1], p[40, 1] - p[38, 1],
                                      p[47, 1] - p[43, 1], p[46, 1] - p[44, 1]])) / eye,
        "brow_height": float(
            (eyes_y[0] - p[17:22, 1].mean()) + (eyes_y[1] - p[22:27, 1].mean())
        ) / (2 * eye),
    }  # fmt: skip


def ratios(
    generated: dict[str, float], inp: dict[str, float], truth: dict[str, float]
) -> dict[str, float | None]:
    """Each measure's generated change over the truth's; None where the truth moves less than
    ``MIN_CHANGE``, and mouth opening only where the truth opens the mouth (``OPEN_MOUTH``)."""
    out: dict[str, float | None] = {}
    for key in MEASURES:
        change = truth[key] - inp[key]
        usable = abs(change) >= MIN_CHANGE
        if key == "mouth_opening":
            usable = usable and truth[key] >= OPEN_MOUTH
        out[key] = (generated[key] - inp[key]) / change if usable else None
    return out


def _enlarged(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    s = side / max(h, w)
    if s == 1:
        return image, 1.0
    size = (round(w * s), round(h * s))
    return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC)), s


def face_points(image: np.ndarray) -> np.ndarray | None:
    """The largest face's 68 landmarks in ``image``'s pixels, or None when dlib finds none."""
    from affinegan.evaluation import face

    big, s = _enlarged(np.asarray(image), LANDMARK_SIDE)
    boxes = face.detect_faces(big, 0) or face.detect_faces(big, 1)
    if not boxes:
        return None
    return face.landmarks(big, boxes[0]).astype(np.float64) / s


def sharpness(image: np.ndarray, points: np.ndarray) -> float:
    """Variance of the Laplacian of the grey face inside the landmarks' box (brows to chin,
    jaw to jaw, shrunk by a tenth on each side), with the frame at ``SHARPNESS_SIDE``: how
    much fine detail the face keeps, whatever the photo's size."""
    from scipy import ndimage

    big, s = _enlarged(np.asarray(image), SHARPNESS_SIDE)
    grey = np.asarray(Image.fromarray(big).convert("L"), np.float64)
    lo, hi = np.asarray(points).min(0) * s, np.asarray(points).max(0) * s
    pad = (hi - lo) / 10
    (x0, y0), (x1, y1) = np.round(lo + pad).astype(int), np.round(hi - pad).astype(int)
    return float(ndimage.laplace(grey)[max(y0, 0) : y1, max(x0, 0) : x1].var())


def embedding(image: np.ndarray) -> np.ndarray | None:
    """dlib's 128-d identity embedding of the largest face, the frame enlarged like
    ``face_points`` so small frames are found; None without a face."""
    from affinegan.evaluation import face

    return face.embed_face(_enlarged(np.asarray(image), LANDMARK_SIDE)[0])


def real_face_figures(
    inp: np.ndarray, truth_peak: np.ndarray, video: Sequence[np.ndarray]
) -> dict[str, object] | None:
    """The real-face figures of one generated ``video`` (alpha 0 first, the peak last) of the
    photo ``inp`` against the person's real expression ``truth_peak``; None when no face is
    found in the input or the truth (nothing to measure against)."""
    p_in, p_gt = face_points(inp), face_points(truth_peak)
    if p_in is None or p_gt is None:
        return None
    found = [face_points(f) for f in video]
    peak = found[-1]
    e_in, e_gt, e_peak = embedding(inp), embedding(truth_peak), embedding(video[-1])
    m_in = measures(p_in)
    return {
        "faces_found": sum(p is not None for p in found),
        "frames": len(found),
        "ratios": None if peak is None else ratios(measures(peak), m_in, measures(p_gt)),
        "truth_mouth_opening": measures(p_gt)["mouth_opening"],
        "identity_peak": _distance(e_peak, e_in),
        "identity_truth": _distance(e_gt, e_in),
        "sharpness": None if peak is None else sharpness(video[-1], peak) / sharpness(inp, p_in),
        "alpha0_error": float(np.abs(video[0].astype(np.float64) - inp).mean()),
    }


def _distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    return None if a is None or b is None else float(np.linalg.norm(a - b))


def summarize(records: Sequence[dict | None]) -> dict[str, float | int | None]:
    """Medians over people (robust to the odd failed landmark fit) and counts."""
    found = [r for r in records if r is not None]

    def median(values: list[float | None]) -> float | None:
        kept = [v for v in values if v is not None]
        return float(np.median(kept)) if kept else None

    out: dict[str, float | int | None] = {
        "people": len(found),
        "skipped": len(records) - len(found),
    }
    for key in MEASURES:
        out[f"{key}_ratio"] = median([(r["ratios"] or {}).get(key) for r in found])
        out[f"{key}_people"] = sum((r["ratios"] or {}).get(key) is not None for r in found)
    for key in ("identity_peak", "identity_truth", "sharpness", "alpha0_error"):
        out[key] = median([r[key] for r in found])
    out["frames_without_face"] = sum(r["frames"] - r["faces_found"] for r in found)
    return out
