"""The figures of an evaluation (steps 4-7 of the protocol in ``evaluate.py``): per clip from its
frames, its videos and its alphas, then summarised over clips. Pixels and numbers only: no
model, no files.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from affinegan.core.region import REGION_THRESHOLD, region_margin
from affinegan.evaluation import metrics

Embedder = Callable[[np.ndarray], "np.ndarray | None"]


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def peak_third(n: int) -> np.ndarray:
    """Which of the truth frames 1..N-1 of an N-frame clip form its peak third: relative
    position k / (N - 1) >= 2/3 (always the last frame at least)."""
    k = np.arange(1, n)
    return 3 * k >= 2 * (n - 1)


def _expression_figures(
    video: np.ndarray, truth: np.ndarray, inp: np.ndarray, region: np.ndarray, peak: np.ndarray
) -> dict[str, Any]:
    """Region PSNR/SSIM of frames 1..N-1 against the truth and expression strength, per frame
    and as means over all of them and over the peak third."""
    pairs = list(zip(video, truth, strict=True))
    rpsnr = np.array([metrics.region_psnr(g, t, region) for g, t in pairs])
    rssim = np.array([metrics.region_ssim(g, t, region) for g, t in pairs])
    return {
        "region_psnr": rpsnr.tolist(),
        "region_ssim": rssim.tolist(),
        "strength": [metrics.expression_strength(g, t, inp, region) for g, t in pairs],
        "region_psnr_mean": _nanmean(rpsnr.tolist()),
        "region_ssim_mean": _nanmean(rssim.tolist()),
        "region_psnr_peak": _nanmean(rpsnr[peak].tolist()),
        "region_ssim_peak": _nanmean(rssim[peak].tolist()),
        "strength_peak": metrics.expression_strength(video[peak], truth[peak], inp, region),
    }


def expression_metrics(
    frames: np.ndarray,
    videos: dict[str, np.ndarray],
    threshold: float = REGION_THRESHOLD,
) -> dict[str, dict[str, Any]]:
    """The expression figures of one clip (N,S,S,3) for videos of N frames at the truth
    positions (step 6 of the protocol): its region, and per video and for copy-input the
    region PSNR/SSIM, strength and, for the videos, region gain over copy-input."""
    n, size = len(frames), min(frames.shape[1:3])
    inp, truth = frames[0], frames[1:]
    margin = region_margin(size)
    region = metrics.expression_region(truth, inp, threshold, margin, margin)
    peak = peak_third(n)
    out: dict[str, dict[str, Any]] = {
        "region": {
            "pixels": int(region.sum()),
            "fraction": float(region.mean()),
            "threshold": threshold,
            "motion": margin,
            "dilate": margin,
            "peak_frames": int(peak.sum()),
        },
        "copy_input": _expression_figures(
            np.broadcast_to(inp, truth.shape), truth, inp, region, peak
        ),
    }
    copy = out["copy_input"]
    for key, video in videos.items():
        out[key] = rec = _expression_figures(video[1:], truth, inp, region, peak)
        rec["region_gain"] = rec["region_psnr_mean"] - copy["region_psnr_mean"]
        rec["region_gain_peak"] = rec["region_psnr_peak"] - copy["region_psnr_peak"]
    return out


def identity_metrics(
    embed: Embedder, inp: np.ndarray, truth: np.ndarray, videos: dict[str, np.ndarray]
) -> dict[str, Any]:
    """ACD-m/-i/-c of each video at the truth frames 1..N-1, plus the truth's own ACD-i/-c."""
    e_in = embed(inp)
    e_gt = [embed(f) for f in truth]
    out: dict[str, Any] = {"input_face_found": e_in is not None}
    out["gt"] = {
        "acd_i": asdict(metrics.acd_i(e_gt, e_in)),
        "acd_c": asdict(metrics.acd_c(e_gt)),
        "faces_missing": sum(e is None for e in e_gt),
    }
    for key, frames in videos.items():
        e = [embed(f) for f in frames]
        out[key] = {
            "acd_m": asdict(metrics.acd_m(e, e_gt)),
            "acd_i": asdict(metrics.acd_i(e, e_in)),
            "acd_c": asdict(metrics.acd_c(e)),
            "faces_missing": sum(v is None for v in e),
        }
    return out


def _video_figures(video: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """SSIM and PSNR of a video's frames 1..N-1 against the truth, and its smoothness."""
    ssim = [metrics.ssim(g, t) for g, t in zip(video[1:], truth, strict=True)]
    psnr = [metrics.psnr(g, t) for g, t in zip(video[1:], truth, strict=True)]
    smooth = metrics.smoothness(video)
    return {
        "ssim": ssim,
        "psnr": psnr,
        "ssim_mean": float(np.mean(ssim)),
        "psnr_mean": float(np.mean(psnr)),
        "smooth_mean": smooth.mean,
        "smooth_max": smooth.max,
    }


def frame_metrics(
    frames: np.ndarray, videos: dict[str, np.ndarray], threshold: float = REGION_THRESHOLD
) -> dict[str, dict[str, Any]]:
    """Steps 4 and 6 of the protocol for one clip (N,S,S,3) and its videos at the truth
    positions (``schedule`` first): whole-frame and expression-region figures per video, with
    the references (the truth's smoothness, the input copied, the alpha = 0 reconstruction)."""
    truth = frames[1:]
    out: dict[str, dict[str, Any]] = {k: _video_figures(v, truth) for k, v in videos.items()}
    gt_smooth = metrics.smoothness(frames)
    out["gt"] = {"smooth_mean": gt_smooth.mean, "smooth_max": gt_smooth.max}
    # References: repeating the input scores this without animating anything, and the
    # alpha = 0 frame against the input shows what the generator loses in rendering alone.
    out["copy_input"] = {
        "ssim_mean": float(np.mean([metrics.ssim(frames[0], t) for t in truth])),
        "psnr_mean": float(np.mean([metrics.psnr(frames[0], t) for t in truth])),
    }
    for key, values in expression_metrics(frames, videos, threshold).items():
        out.setdefault(key, {}).update(values)
    first = videos["schedule"][0]
    out["reconstruction"] = {
        "ssim_mean": metrics.ssim(first, frames[0]),
        "psnr_mean": metrics.psnr(first, frames[0]),
    }
    return out


def intensity_metrics(
    frames: np.ndarray, inferred: np.ndarray, truth_intensity: list[float] | None
) -> dict[str, float]:
    """Step 5: how well the inferred alphas rank the frames (against the true intensities when
    known, and against a model-free pixel-distance ranking)."""
    pixel_dist = np.abs(frames.astype(np.float64) - frames[0]).mean(axis=(1, 2, 3))
    known = bool(truth_intensity)
    return {
        "spearman": metrics.spearman(inferred[1:], truth_intensity[1:]) if known else math.nan,
        "spearman_pixel_baseline": (
            metrics.spearman(pixel_dist[1:], truth_intensity[1:]) if known else math.nan
        ),
        "monotonic_fraction": metrics.monotonic_fraction(inferred),
        "kendall_tau": metrics.kendall_tau(inferred.tolist(), list(range(len(frames)))),
        "alpha_peak": float(inferred.max()),
    }


def summarize(clips: list[dict[str, Any]]) -> dict[str, float | int]:
    """Means over clips of the per-clip figures, plus pooled Spearman and face counts."""

    def mean(get: Callable[[dict[str, Any]], Any]) -> float:
        return _nanmean([get(c) for c in clips])

    s: dict[str, float | int] = {"clips": len(clips), "frames": sum(c["frames"] - 1 for c in clips)}
    videos = (
        ("schedule", ""),
        ("oracle", "oracle_"),
        ("copy_input", "copy_"),
        ("reconstruction", "recon_"),
    )
    for video, prefix in videos:
        s[f"{prefix}ssim"] = mean(lambda c, v=video: c[v]["ssim_mean"])
        s[f"{prefix}psnr"] = mean(lambda c, v=video: c[v]["psnr_mean"])
    pooled_a, pooled_t = [], []
    for c in clips:
        if c["true_intensity"]:
            pooled_a += c["alpha_inferred"][1:]
            pooled_t += c["true_intensity"][1:]
    s["region_fraction"] = mean(lambda c: c["region"]["fraction"])
    s["region_empty"] = sum(c["region"]["pixels"] == 0 for c in clips)
    for video, prefix in videos[:3]:
        for m in ("region_psnr", "region_ssim"):
            s[f"{prefix}{m}"] = mean(lambda c, v=video, m=m: c[v][f"{m}_mean"])
            s[f"{prefix}{m}_peak"] = mean(lambda c, v=video, m=m: c[v][f"{m}_peak"])
    for video, prefix in videos[:2]:
        for m in ("region_gain", "region_gain_peak", "strength_peak"):
            s[f"{prefix}{m}"] = mean(lambda c, v=video, m=m: c[v][m])
    s["spearman"] = mean(lambda c: c["intensity"]["spearman"])
    s["spearman_pooled"] = metrics.spearman(pooled_a, pooled_t) if pooled_a else math.nan
    s["spearman_pixel_baseline"] = mean(lambda c: c["intensity"]["spearman_pixel_baseline"])
    s["monotonic_fraction"] = mean(lambda c: c["intensity"]["monotonic_fraction"])
    s["kendall_tau"] = mean(lambda c: c["intensity"]["kendall_tau"])
    s["alpha_peak"] = mean(lambda c: c["intensity"]["alpha_peak"])
    if any("input_face_found" in c for c in clips):
        for video, prefix in (("schedule", ""), ("oracle", "oracle_")):
            for m in ("acd_m", "acd_i", "acd_c"):
                s[f"{prefix}{m}"] = mean(lambda c, v=video, m=m: c[v][m]["value"])
        s["gt_acd_i"] = mean(lambda c: c["gt"]["acd_i"]["value"])
        s["gt_acd_c"] = mean(lambda c: c["gt"]["acd_c"]["value"])
        s["faces_missing_generated"] = sum(c["schedule"]["faces_missing"] for c in clips)
        s["faces_missing_oracle"] = sum(c["oracle"]["faces_missing"] for c in clips)
        s["faces_missing_gt"] = sum(c["gt"]["faces_missing"] for c in clips)
        s["faces_missing_input"] = sum(not c["input_face_found"] for c in clips)
    for video, prefix in (("schedule", ""), ("oracle", "oracle_"), ("gt", "gt_")):
        s[f"{prefix}smooth_mean"] = mean(lambda c, v=video: c[v]["smooth_mean"])
        s[f"{prefix}smooth_max"] = mean(lambda c, v=video: c[v]["smooth_max"])
    return s


def jsonable(obj: Any) -> Any:
    """nan/inf -> null so the file is strict JSON; numpy scalars -> Python numbers."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
