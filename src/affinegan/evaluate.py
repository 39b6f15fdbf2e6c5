"""The evaluation road: test clips with ground truth -> generated videos -> metrics -> reports.

Protocol, per clip of N > 1 frames (frames k = 0..N-1 in name order; frame 0 is the input A,
frames 1..N-1 the ground truth):

1. Every frame is loaded like a generation input (RGB, bicubic to the model's size).
2. Schedule video: N frames at alpha = linspace(0, 1, N), so generated frame k sits at the
   same relative position k / (N - 1) as truth frame k. Frames already written by
   `affinegan generate` (M frames <clip>_fake_B_list<i>.png in
   <results_dir>/<name>/<phase>_<epoch>/images/, newer than the checkpoint) are read instead,
   and truth frame k is matched with generated frame floor(k (M - 1) / (N - 1) + 1/2).
3. Oracle video: the model's own encoder infers the intensity of every truth frame,
   alpha_k = |<f(B_k) - f0, fr>| / ||fr|| (docs/method.md, "Intensity inference"), and frames are
   decoded at those alphas: the generator measured apart from the intensity schedule.
4. SSIM (scikit-image defaults: 7x7 uniform window, channels averaged) and PSNR (8-bit,
   identical frames capped at 100 dB) compare frames k = 1..N-1 with truth frame k; so do
   ACD-m, ACD-i (vs the input frame) and ACD-c (all pairs), from dlib's 128-d face embeddings
   (L2 distance). The truth frames get ACD-i/ACD-c too, as the reference. A frame without a
   detected face is counted and left out, never given a made-up embedding. Smoothness (mean
   absolute change between consecutive frames, 0..255) runs over all N frames of each video.
   The input repeated N times scores a model-free reference SSIM/PSNR (copy_ssim, copy_psnr);
   the generated frame 0 (alpha 0) against the input measures rendering alone (recon_*).
5. Intensity fidelity: Spearman of the inferred alphas of frames 1..N-1 against the true
   intensities of synthetic data (<dataroot>/<phase>/meta/<clip>.json), per clip and pooled
   over clips; a model-free reference ranks frames by their pixel distance to the input
   instead. Monotonicity (share of non-decreasing steps) and Kendall tau against the frame
   index use all N inferred alphas.
6. The expression itself. The expression changes a small part of the frame (3-7% of the
   synthetic 64 px test faces: mouth, eyes, brows), so whole-frame figures mostly score the
   face that does not move, and copying the input scores well on them. The clip's expression
   region is where some truth frame 1..N-1 differs from the input by more than 20 levels (of
   255, in some channel) beyond what moving the head by m = max(1, round(S / 64)) pixels
   explains (a value inside the range of the input's values within m px can come from such
   a shift, sub-pixel ones included), dilated by m px (8-connected). 20 levels lies above
   the few levels of JPEG and anti-aliasing noise and below a mouth or eye changing shape
   (tens of levels, up to 200); without the motion allowance the synthetic clips' slight
   head motion marks every contour of face and hair (20-30% of the frame). The dilation
   takes in the soft rim of each change, which stays under the threshold. Inside the region,
   per truth frame: region PSNR (MSE over the region's pixels and channels, 8-bit, 100 dB
   cap) and region SSIM (the SSIM map of step 4 averaged over the region), for the schedule
   and oracle videos and for the input repeated (copy-input); region gain = region PSNR -
   copy-input region PSNR, the dB above copying the input. Expression strength = mean
   |generated - input| / mean |truth - input| over the region, per frame (a curve over
   relative position) and pooled over the peak third, the truth frames at relative position
   k / (N - 1) >= 2/3: 1 is as strong as the truth, ~0 faint (the input copied), > 1
   over-drawn. Strength counts any change, so re-rendering the face blurred raises it too
   (read it with region gain); and the truth's change includes its head motion, which no
   generator is asked to reproduce: on the synthetic benchmark, every truth frame redrawn
   without its head motion scores strength 0.69-0.84 and region gain +3.6 to +7.6 dB at the
   peak third (benchmarks/quality.py's reference rows). Region figures are given as means
   over frames 1..N-1 (region_psnr_mean, region_gain) and over the peak third (*_peak). A
   clip whose truth never changes beyond the threshold has an empty region: its region
   figures are null, and the summary counts it (region_empty).
7. Summary figures are means over clips of the per-clip means (each clip counts once);
   undefined values (no face found, no true intensities, an empty region) are left out and
   stored as null.

The generator runs in eval mode (dropout off, no noise), so an evaluation is deterministic.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from . import checkpoint as ckpt
from . import metrics
from .config import ProcessOptions, build_parser
from .data.dataset import Clip, scan_clips
from .data.images import image_to_tensor, load_rgb
from .errors import AffineGANError
from .generate import animate, load_generator, set_mode
from .model import infer_alpha
from .networks import Generator
from .report import compare_table, terminal_summary, write_reports
from .runtime import resolve_device, thread_policy

log = logging.getLogger(__name__)

FORMAT = "affinegan-eval/1"

# (resize factor, dlib upsampling) tried in turn until a face is found. dlib's frontal detector
# finds faces of about 80 px and up; 64 px frames need its 2x upsampling, and the few frames it
# still misses are often found after a bicubic enlargement.
DETECTION_LADDER: tuple[tuple[float, int], ...] = ((1.0, 1), (2.0, 0), (2.5, 0))
LADDER_MAX_SIDE = 256  # frames at least this large get one plain detection pass

Embedder = Callable[[np.ndarray], "np.ndarray | None"]


def _opt(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class EvalConfig(ProcessOptions):
    """Options of ``affinegan evaluate`` (flag names follow ``affinegan generate``)."""

    dataroot: str = _opt("", "dataset root with <phase>/img/<clip>/ (frame 1 input)", required=True)
    name: str = _opt("experiment_name", "run name under --checkpoints_dir")
    checkpoints_dir: str = _opt("./checkpoints", "where runs are saved")
    results_dir: str = _opt("./results/", "frames already generated are read from here")
    epoch: str = _opt("latest", "which weights: latest or an epoch number")
    phase: str = _opt("test", "split whose clips are evaluated (train: a sanity check)")
    gpu_ids: str = _opt("0", "GPU id; -1 for CPU")
    out: str = _opt("", "JSON to write (default <results_dir>/<name>/eval_<phase>_<epoch>.json)")
    fineSize: int = _opt(0, "evaluation size (0: the size the model was trained at)")
    max_clips: int = _opt(0, "evaluate at most this many clips (0: all)")
    chunk: int = _opt(32, "frames decoded per batch")
    regenerate: bool = _opt(False, "ignore frames already in --results_dir")
    no_faces: bool = _opt(False, "skip the face-embedding metrics (ACD; needs dlib)")
    region_threshold: float = _opt(
        metrics.REGION_THRESHOLD, "levels (0-255) a truth pixel must change to be expression"
    )
    verbose: bool = _opt(False, "more log output")

    @property
    def run_dir(self) -> Path:
        return Path(self.checkpoints_dir) / self.name

    @property
    def json_path(self) -> Path:
        if self.out:
            return Path(self.out)
        return Path(self.results_dir) / self.name / f"eval_{self.phase}_{self.epoch}.json"


def face_embedding(image: np.ndarray) -> np.ndarray | None:
    """128-d identity embedding of the largest face, trying enlargements for small frames;
    None when dlib finds no face (the caller counts it, it is never replaced)."""
    from . import face

    steps = DETECTION_LADDER if min(image.shape[:2]) < LADDER_MAX_SIDE else DETECTION_LADDER[:1]
    h, w = image.shape[:2]
    for factor, upsample in steps:
        img = image
        if factor != 1.0:
            size = (round(w * factor), round(h * factor))
            img = np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))
        boxes = face.detect_faces(img, upsample)
        if boxes:
            return face.embed_face(img, boxes[0])
    return None


def _check_face_tools() -> None:
    """Fail before any work when dlib or its model files are missing (one-line error)."""
    from . import face

    face.models_dir()
    face.detect_faces(np.zeros((8, 8, 3), np.uint8), 0)


def load_truth_intensity(root: Path, phase: str, clip: Clip) -> list[float] | None:
    """True per-frame intensities of a synthetic clip (``<phase>/meta/<clip>.json``), if any."""
    path = Path(root) / phase / "meta" / f"{clip.name}.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        by_name = dict(zip(meta["frames"], meta["intensity"], strict=True))
        return [float(by_name[f.name]) for f in clip.frames]
    except (ValueError, KeyError, TypeError) as err:
        log.warning("%s: unreadable intensity metadata (%s); intensity fidelity skipped", path, err)
        return None


def generated_frames_dir(cfg: EvalConfig) -> Path:
    """Where ``affinegan generate`` writes frames (the original's results layout)."""
    return Path(cfg.results_dir) / cfg.name / f"{cfg.phase}_{cfg.epoch}" / "images"


def read_generated(folder: Path, clip: str, size: int, newer_than: float) -> np.ndarray | None:
    """``<clip>_fake_B_list0..M-1.png`` from ``folder`` as (M,S,S,3) uint8, or None when absent
    or older than the checkpoint (frames of an earlier model must not be scored)."""
    paths = []
    while (p := folder / f"{clip}_fake_B_list{len(paths)}.png").is_file():
        paths.append(p)
    if not paths:
        return None
    if min(p.stat().st_mtime for p in paths) < newer_than:
        log.warning("%s: frames of %s are older than the checkpoint; regenerating", folder, clip)
        return None
    return np.stack([np.asarray(load_rgb(p, size)) for p in paths])


@torch.inference_mode()
def infer_clip_alphas(G: Generator, x: torch.Tensor, chunk: int = 32) -> np.ndarray:
    """Intensity of every frame of a clip (N,3,S,S) relative to its first frame -> (N,)."""
    enc_a = G.encode(x[:1])
    f0, fr = G.feature(enc_a, 1.0, 0.0), G.feature(enc_a, 0.0, 1.0)
    fk = torch.cat(
        [
            G.feature(G.encode(x[i : i + chunk], residual=False), 1.0, None)
            for i in range(0, len(x), chunk)
        ]
    )
    return infer_alpha(f0, fr, fk[None])[0].double().cpu().numpy()


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
    threshold: float = metrics.REGION_THRESHOLD,
) -> dict[str, dict[str, Any]]:
    """The expression figures of one clip (N,S,S,3) for videos of N frames at the truth
    positions (step 6 of the protocol): its region, and per video and for copy-input the
    region PSNR/SSIM, strength and, for the videos, region gain over copy-input."""
    n, size = len(frames), min(frames.shape[1:3])
    inp, truth = frames[0], frames[1:]
    margin = metrics.region_margin(size)
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


def _identity_metrics(
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


def evaluate_clip(
    G: Generator,
    clip: Clip,
    size: int,
    device: torch.device,
    generated: np.ndarray | None = None,
    truth_intensity: list[float] | None = None,
    embed: Embedder | None = None,
    chunk: int = 32,
    region_threshold: float = metrics.REGION_THRESHOLD,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """All metrics of one clip, and its truth/schedule/oracle videos at the truth positions.

    ``generated`` (M,S,S,3), frames written earlier, replaces the schedule video when given.
    """
    frames = np.stack([np.asarray(load_rgb(p, size)) for p in clip.frames])  # (N,S,S,3)
    n = len(frames)
    x = torch.stack([image_to_tensor(Image.fromarray(f)) for f in frames]).to(device)
    inferred = infer_clip_alphas(G, x, chunk)
    schedule = np.linspace(0.0, 1.0, n)
    source = "read" if generated is not None else "generated"
    if generated is None:
        generated = animate(G, x[0], schedule.tolist(), chunk)
    matched = generated[metrics.match_positions(n, len(generated))]
    oracle = animate(G, x[0], inferred.tolist(), chunk)
    truth = frames[1:]
    rec: dict[str, Any] = {
        "clip": clip.name,
        "frames": n,
        "generated_frames": len(generated),
        "source": source,
        "alpha_schedule": schedule.tolist(),
        "alpha_inferred": inferred.tolist(),
        "true_intensity": truth_intensity,
    }
    for key, video in (("schedule", matched), ("oracle", oracle)):
        ssim = [metrics.ssim(g, t) for g, t in zip(video[1:], truth, strict=True)]
        psnr = [metrics.psnr(g, t) for g, t in zip(video[1:], truth, strict=True)]
        smooth = metrics.smoothness(video)
        rec[key] = {
            "ssim": ssim,
            "psnr": psnr,
            "ssim_mean": float(np.mean(ssim)),
            "psnr_mean": float(np.mean(psnr)),
            "smooth_mean": smooth.mean,
            "smooth_max": smooth.max,
        }
    gt_smooth = metrics.smoothness(frames)
    rec["gt"] = {"smooth_mean": gt_smooth.mean, "smooth_max": gt_smooth.max}
    # References: repeating the input scores this without animating anything, and the
    # alpha = 0 frame against the input shows what the generator loses in rendering alone.
    rec["copy_input"] = {
        "ssim_mean": float(np.mean([metrics.ssim(frames[0], t) for t in truth])),
        "psnr_mean": float(np.mean([metrics.psnr(frames[0], t) for t in truth])),
    }
    for key, values in expression_metrics(
        frames, {"schedule": matched, "oracle": oracle}, region_threshold
    ).items():
        rec.setdefault(key, {}).update(values)
    rec["reconstruction"] = {
        "ssim_mean": metrics.ssim(matched[0], frames[0]),
        "psnr_mean": metrics.psnr(matched[0], frames[0]),
    }
    index = list(range(n))
    pixel_dist = np.abs(frames.astype(np.float64) - frames[0]).mean(axis=(1, 2, 3))
    rec["intensity"] = {
        "spearman": (
            metrics.spearman(inferred[1:], truth_intensity[1:]) if truth_intensity else math.nan
        ),
        "spearman_pixel_baseline": (
            metrics.spearman(pixel_dist[1:], truth_intensity[1:]) if truth_intensity else math.nan
        ),
        "monotonic_fraction": metrics.monotonic_fraction(inferred),
        "kendall_tau": metrics.kendall_tau(inferred.tolist(), index),
        "alpha_peak": float(inferred.max()),
    }
    if embed is not None:
        ident = _identity_metrics(
            embed, frames[0], truth, {"schedule": matched[1:], "oracle": oracle[1:]}
        )
        rec["input_face_found"] = ident.pop("input_face_found")
        for key, values in ident.items():
            rec[key].update(values)
    return rec, {"truth": frames, "schedule": matched, "oracle": oracle}


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


def _jsonable(obj: Any) -> Any:
    """nan/inf -> null so the file is strict JSON; numpy scalars -> Python numbers."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _eval_clips(cfg: EvalConfig) -> list[Clip]:
    clips = scan_clips(Path(cfg.dataroot), cfg.phase, use_patch=False, min_frames=1)
    usable = [c for c in clips if len(c.frames) > 1]
    if not usable:
        img = Path(cfg.dataroot) / cfg.phase / "img"
        raise AffineGANError(
            f"{img}: no clip has ground-truth frames (each has only its input frame); add "
            "expression frames after frame 1, or check the model on its training clips with "
            "--phase train"
        )
    if len(usable) < len(clips):
        log.info(
            "%d of %d clips have no ground-truth frames and are skipped",
            len(clips) - len(usable),
            len(clips),
        )
    return usable[: cfg.max_clips] if cfg.max_clips > 0 else usable


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate a run on every clip with ground truth; write JSON, Markdown, HTML and plots."""
    if cfg.chunk < 1:
        raise AffineGANError("--chunk must be at least 1")
    clips = _eval_clips(cfg)
    if not cfg.no_faces:
        _check_face_tools()
    device = resolve_device(cfg.gpu_ids)
    model = load_generator(cfg.run_dir, cfg.epoch, size=cfg.fineSize)
    G = model.G.to(device)
    set_mode(G, dropout=False)
    ckpt_time = ckpt.weight_path(cfg.run_dir, cfg.epoch, "G").stat().st_mtime
    gen_dir = generated_frames_dir(cfg)
    records, videos = [], {}
    for clip in tqdm(clips, desc="evaluating", unit="clip", dynamic_ncols=True, disable=None):
        generated = (
            None if cfg.regenerate else read_generated(gen_dir, clip.name, model.size, ckpt_time)
        )
        truth = load_truth_intensity(Path(cfg.dataroot), cfg.phase, clip)
        rec, videos[clip.name] = evaluate_clip(
            G,
            clip,
            model.size,
            device,
            generated,
            truth,
            None if cfg.no_faces else face_embedding,
            cfg.chunk,
            cfg.region_threshold,
        )
        records.append(rec)
    result = {
        "format": FORMAT,
        "run": {
            "name": cfg.name,
            "run_dir": str(cfg.run_dir),
            "epoch": cfg.epoch,
            "dataroot": str(cfg.dataroot),
            "phase": cfg.phase,
            "size": model.size,
            "train_config": ckpt.read_config(cfg.run_dir) or {},
        },
        "protocol": protocol_text(),
        "summary": summarize(records),
        "clips": records,
    }
    result = _jsonable(result)
    write_reports(result, cfg.json_path, videos)
    return result


def protocol_text() -> str:
    """The evaluation protocol in words, stored with every result (the module docstring)."""
    doc = __doc__ or ""
    return doc.split("\n\n", 1)[1].rsplit("\n\n", 1)[0].strip()


def load_result(path: Path) -> dict[str, Any]:
    """An evaluation JSON written by ``affinegan evaluate``, or a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise AffineGANError(
            f"{path}: no such evaluation file; write it with affinegan evaluate --out"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AffineGANError(
            f"{path}: not valid JSON ({err}); give a file from affinegan evaluate"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "summary" not in data:
        raise AffineGANError(
            f"{path}: not an affinegan evaluation ({FORMAT}); give a file from affinegan evaluate"
        )
    return data


def main(argv: list[str] | None = None) -> int:
    """``affinegan evaluate``: score a run against ground-truth clips."""
    parser = build_parser(
        EvalConfig, "affinegan evaluate", "Evaluate a trained model on clips with ground truth."
    )
    ns = vars(parser.parse_args(argv))
    cfg = EvalConfig(**{f.name: ns[f.name] for f in fields(EvalConfig)})
    thread_policy(cfg.torch_threads)
    result = evaluate(cfg)
    print(terminal_summary(result))
    print(f"report: {cfg.json_path.with_suffix('.html')} (JSON {cfg.json_path})")
    return 0


def compare_main(argv: list[str] | None = None) -> int:
    """``affinegan compare A.json B.json``: two evaluations side by side with deltas."""
    p = argparse.ArgumentParser(prog="affinegan compare", description=compare_main.__doc__)
    p.add_argument("run_a", help="evaluation JSON of the first run")
    p.add_argument("run_b", help="evaluation JSON of the second run")
    p.add_argument("--out", default="", help="also write the table to this Markdown file")
    a = p.parse_args(argv)
    table = compare_table(load_result(Path(a.run_a)), load_result(Path(a.run_b)), a.run_a, a.run_b)
    print(table)
    if a.out:
        Path(a.out).write_text(table + "\n", encoding="utf-8")
    return 0
