"""Quality metrics of generated expression videos (docs/method.md, "Evaluation used in the paper").

Pure functions on uint8 HWC frames and float vectors, so each can be checked by hand:

- ``ssim`` / ``psnr``: frame fidelity against the ground truth at the same clip position.
- ``acd_*``: average content distance (mean L2 distance of 128-d face-identity embeddings,
  as in MoCoGAN/AffineGAN): ACD-m generated vs ground truth frame-wise, ACD-i every frame vs
  the input face (identity kept), ACD-c mean over pairs of frames (consistency). A frame
  without a detected face has no embedding (``None``); it is left out of every pair, never
  replaced, and ``missing`` counts it.
- ``spearman`` / ``kendall_tau`` / ``monotonic_fraction``: how well inferred intensities follow
  the true ones and the order of the clip.
- ``smoothness``: mean and largest frame-to-frame change, in 8-bit grey levels.
- ``expression_region`` / ``region_psnr`` / ``region_ssim`` / ``expression_strength``: the
  expression itself. Most of a face video does not move, so whole-frame figures mostly score
  the unchanged face; these restrict the comparison to where the ground truth changes.

Undefined values (a constant sequence, no embeddings at all) are ``nan``, never a guess.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from affinegan.core.region import REGION_THRESHOLD, region_margin
from affinegan.errors import AffineGANError

PSNR_MAX_DB = 100.0  # PSNR of identical 8-bit images (mathematically +inf), so means stay finite

Embedding = np.ndarray | None


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a, b


def psnr(
    a: np.ndarray, b: np.ndarray, data_range: float = 255.0, max_db: float = PSNR_MAX_DB
) -> float:
    """Peak signal-to-noise ratio ``10 log10(R^2 / MSE)`` over all pixels and channels, in dB.

    Identical images have MSE 0 and give ``max_db`` (100 dB; pass ``math.inf`` for the exact
    value). The smallest non-zero MSE of an 8-bit 64x64 RGB pair is already 119 dB, so the cap
    never touches a real difference of a generated frame.
    """
    a, b = _pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return max_db
    return min(max_db, 10.0 * math.log10(data_range**2 / mse))


def _structural_similarity(
    a: np.ndarray, b: np.ndarray, data_range: float = 255.0, **kw: Any
) -> Any:
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        raise AffineGANError("SSIM needs scikit-image: pip install 'affinegan[eval]'") from None
    return structural_similarity(
        a.astype(np.float64),
        b.astype(np.float64),
        data_range=data_range,
        channel_axis=-1 if a.ndim == 3 else None,
        **kw,
    )


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean structural similarity of two HWC (or HW) images: scikit-image's implementation
    with its defaults (7x7 uniform window, K1 0.01, K2 0.03), channels averaged, as the
    paper's evaluation code called it. Identical images give 1.
    """
    a, b = _pair(a, b)
    return float(_structural_similarity(a, b, data_range))


def _ndimage() -> Any:
    try:
        from scipy import ndimage
    except ImportError:
        raise AffineGANError(
            "the expression region needs scipy: pip install 'affinegan[eval]'"
        ) from None
    return ndimage


def motion_tolerant_change(frames: np.ndarray, input_frame: np.ndarray, motion: int) -> np.ndarray:
    """Per pixel and channel, how far each frame's value lies outside the range of the input's
    values within ``motion`` pixels (a (2m+1)^2 window). Moving the input by up to ``motion``
    pixels, sub-pixel shifts included (they interpolate neighbours), only produces values
    inside that range, so a shifted contour scores 0 and a new mouth shape does not.
    ``motion`` 0 is the plain |frame - input|.
    """
    frames = np.asarray(frames, np.float64)
    inp = np.asarray(input_frame, np.float64)
    if motion <= 0:
        return np.abs(frames - inp)
    window = (2 * motion + 1,) * 2 + (1,) * (inp.ndim - 2)
    ndimage = _ndimage()
    lo = ndimage.minimum_filter(inp, size=window, mode="nearest")
    hi = ndimage.maximum_filter(inp, size=window, mode="nearest")
    return np.maximum(lo - frames, 0.0) + np.maximum(frames - hi, 0.0)


def expression_region(
    truth_frames: np.ndarray,
    input_frame: np.ndarray,
    threshold: float = REGION_THRESHOLD,
    dilate: int | None = None,
    motion: int | None = None,
) -> np.ndarray:
    """Where a clip's expression happens: (H,W) bool mask of the pixels where some truth frame
    differs from the input by more than ``threshold`` levels in some channel, beyond what
    moving the head by ``motion`` pixels explains (``motion_tolerant_change``), grown by
    ``dilate`` pixels (8-connected) so the soft, anti-aliased rim of each change, which stays
    under the threshold, is inside too. None: ``region_margin`` of the frame size for both.
    """
    truth = np.asarray(truth_frames)
    inp = np.asarray(input_frame)
    if truth.shape[1:] != inp.shape:
        raise ValueError(f"truth frames {truth.shape} do not match the input {inp.shape}")
    margin = region_margin(min(inp.shape[:2]))
    change = motion_tolerant_change(truth, inp, margin if motion is None else motion)
    change = change.max(axis=0)
    if change.ndim == 3:
        change = change.max(axis=-1)
    mask = change > threshold
    dilate = margin if dilate is None else dilate
    if dilate > 0 and mask.any():
        mask = _ndimage().binary_dilation(mask, np.ones((3, 3), bool), iterations=dilate)
    return mask


def _check_region(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``region`` as bool, if it fits (..., H, W, C) colour images or one (H, W) grey image."""
    region = np.asarray(region, bool)
    shape = np.shape(image)
    if shape[-3:-1] != region.shape and shape != region.shape:
        raise ValueError(f"region {region.shape} does not match images {shape}")
    return region


def _in_region(x: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The region's pixels of (..., H, W, C) images or one (H, W) image, as float64."""
    x = np.asarray(x, np.float64)
    return x[region] if x.ndim == 2 else x[..., region, :]


def region_psnr(
    a: np.ndarray, b: np.ndarray, region: np.ndarray, max_db: float = PSNR_MAX_DB
) -> float:
    """PSNR of two 8-bit images from the MSE over the region's pixels (all channels) only;
    nan for an empty region, ``max_db`` when they agree there."""
    a, b = _pair(a, b)
    region = _check_region(a, region)
    if not region.any():
        return math.nan
    mse = float(np.mean((_in_region(a, region) - _in_region(b, region)) ** 2))
    return max_db if mse == 0.0 else min(max_db, 10.0 * math.log10(255.0**2 / mse))


def region_ssim(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    """SSIM averaged over the region only: scikit-image's full SSIM map (the settings of
    ``ssim``) averaged over the region's pixels and channels; nan for an empty region."""
    a, b = _pair(a, b)
    region = _check_region(a, region)
    if not region.any():
        return math.nan
    _, full = _structural_similarity(a, b, full=True)
    return float(_in_region(full, region).mean())


def expression_strength(
    generated: np.ndarray, truth: np.ndarray, input_frame: np.ndarray, region: np.ndarray
) -> float:
    """How much of the truth's change from the input the generated frames draw: mean
    |generated - input| over mean |truth - input| inside the region, pooled over all the
    frames given (a frame or a stack). 1: as strong as the truth; 0: the input copied;
    > 1: over-drawn. nan when the truth does not change there (or the region is empty).
    """
    generated, truth = _pair(generated, truth)
    region = _check_region(generated, region)
    inp = _in_region(input_frame, region)
    drawn = np.abs(_in_region(generated, region) - inp).sum()
    wanted = np.abs(_in_region(truth, region) - inp).sum()
    return float(drawn / wanted) if wanted > 0 else math.nan


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


@dataclass(frozen=True)
class Distance:
    """A mean embedding distance and how many frames had no face (and so were left out)."""

    value: float
    pairs: int
    missing: int


def acd_m(generated: Sequence[Embedding], truth: Sequence[Embedding]) -> Distance:
    """ACD-m: mean distance between generated frame i and ground-truth frame i."""
    if len(generated) != len(truth):
        raise ValueError(f"{len(generated)} generated vs {len(truth)} ground-truth embeddings")
    d = [
        _dist(g, t)
        for g, t in zip(generated, truth, strict=True)
        if g is not None and t is not None
    ]
    missing = sum(e is None for e in (*generated, *truth))
    return Distance(_mean(d), len(d), missing)


def acd_i(frames: Sequence[Embedding], reference: Embedding) -> Distance:
    """ACD-i: mean distance of every frame to the input face (identity preservation)."""
    missing = sum(e is None for e in frames) + (reference is None)
    if reference is None:
        return Distance(math.nan, 0, missing)
    d = [_dist(e, reference) for e in frames if e is not None]
    return Distance(_mean(d), len(d), missing)


def acd_c(frames: Sequence[Embedding]) -> Distance:
    """ACD-c: mean distance over all unordered pairs of frames (identity consistency)."""
    found = [e for e in frames if e is not None]
    d = [_dist(a, b) for a, b in itertools.combinations(found, 2)]
    return Distance(_mean(d), len(d), len(frames) - len(found))


def rankdata(x: Sequence[float]) -> np.ndarray:
    """Ranks starting at 1; ties share the mean of the ranks they span."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    start = 0
    for end in range(1, len(x) + 1):
        if end == len(x) or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else math.nan


def _check_same_length(x: Sequence[float], y: Sequence[float]) -> None:
    if len(x) != len(y):
        raise ValueError(f"sequences differ in length: {len(x)} vs {len(y)}")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson on tie-averaged ranks); nan if either is constant."""
    _check_same_length(x, y)
    if len(x) < 2:
        return math.nan
    return _pearson(rankdata(x), rankdata(y))


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (tie-corrected); nan if either sequence is constant."""
    _check_same_length(x, y)
    concordant = discordant = ties_x = ties_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            ties_x += 1
        elif dy == 0:
            ties_y += 1
        elif dx == dy:
            concordant += 1
        else:
            discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denom if denom > 0 else math.nan


def monotonic_fraction(values: Sequence[float], tol: float = 0.0) -> float:
    """Share of steps that do not go down by more than ``tol`` (1 for a rising clip)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return math.nan
    return float(np.mean(np.diff(v) >= -tol))


@dataclass(frozen=True)
class Smoothness:
    """Frame-to-frame change of a video: mean absolute pixel difference per step (0..255)."""

    mean: float
    max: float


def smoothness(frames: np.ndarray | Sequence[np.ndarray]) -> Smoothness:
    """Mean and largest per-step mean absolute difference of consecutive uint8 frames.

    A video that jumps between frames has a large max next to its mean; a frozen one has 0.
    """
    v = np.asarray(frames, dtype=np.float64)
    if len(v) < 2:
        return Smoothness(math.nan, math.nan)
    steps = np.abs(np.diff(v, axis=0)).reshape(len(v) - 1, -1).mean(axis=1)
    return Smoothness(float(steps.mean()), float(steps.max()))


def match_positions(n_truth: int, n_generated: int) -> list[int]:
    """For each ground-truth frame, the generated frame at the same relative clip position.

    Truth frame k of N sits at k / (N - 1); the generated frame i of M at i / (M - 1), so k
    maps to ``floor(k (M - 1) / (N - 1) + 1/2)`` (halves round up). With M == N this is the
    identity.
    """
    if n_truth < 1 or n_generated < 1:
        raise ValueError("both videos need at least one frame")
    if n_truth == 1:
        return [0]
    return [math.floor(k * (n_generated - 1) / (n_truth - 1) + 0.5) for k in range(n_truth)]
