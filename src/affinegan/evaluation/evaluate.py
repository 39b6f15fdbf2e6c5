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
7. Real faces (with face tools, not --no_faces): dlib's 68 landmarks of the input, the last
   truth frame and every generated frame give the expression's geometry (mouth width, corner
   lift, mouth opening, eye opening, brow height, in outer-eye-corner distances, the face
   levelled), each reported as the generated peak's change from the input over the truth's
   change (1 = as much as the real expression; none where the truth moves under 0.01, mouth
   opening only where the truth's lips part by 0.05); the identity distance of the generated
   peak to the input beside the truth's own; the face's sharpness at 256 px (variance of the
   Laplacian inside the landmarks' box) over the input's; faces found in the generated
   frames; the alpha-0 error (mean absolute level difference to the input). Summarised as
   medians over clips (face_*), robust to a failed landmark fit (face_geometry.py).
8. Summary figures are means over clips of the per-clip means (each clip counts once);
   undefined values (no face found, no true intensities, an empty region) are left out and
   stored as null.

The generator runs in eval mode (dropout off, no noise), so an evaluation is deterministic.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from affinegan import checkpoint as ckpt
from affinegan import layout
from affinegan.cli.command_options import EvalConfig
from affinegan.core.intensity import infer_alpha
from affinegan.core.networks import Generator
from affinegan.core.region import REGION_THRESHOLD
from affinegan.data.dataset import Clip, scan_clips
from affinegan.data.images import image_to_tensor, load_rgb
from affinegan.errors import AffineGANError
from affinegan.evaluation import metrics
from affinegan.evaluation.face_geometry import real_face_figures
from affinegan.evaluation.face_geometry import summarize as summarize_faces
from affinegan.evaluation.report import FORMAT, write_reports
from affinegan.evaluation.scoring import (
    Embedder,
    frame_metrics,
    identity_metrics,
    intensity_metrics,
    jsonable,
    summarize,
)
from affinegan.generation.generate import animate, load_generator, set_mode
from affinegan.options import validate
from affinegan.runtime import resolve_device

log = logging.getLogger(__name__)


# (resize factor, dlib upsampling) tried in turn until a face is found. dlib's frontal detector
# finds faces of about 80 px and up; 64 px frames need its 2x upsampling, and the few frames it
# still misses are often found after a bicubic enlargement.
DETECTION_LADDER: tuple[tuple[float, int], ...] = ((1.0, 1), (2.0, 0), (2.5, 0))
LADDER_MAX_SIDE = 256  # frames at least this large get one plain detection pass


def face_embedding(image: np.ndarray) -> np.ndarray | None:
    """128-d identity embedding of the largest face, trying enlargements for small frames;
    None when dlib finds no face (the caller counts it, it is never replaced)."""
    from affinegan.evaluation import face

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
    from affinegan.evaluation import face

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
    return (
        layout.results_folder(cfg.results_dir, cfg.name, cfg.phase, cfg.epoch) / layout.IMAGES_DIR
    )


def read_generated(folder: Path, clip: str, size: int, newer_than: float) -> np.ndarray | None:
    """``<clip>_fake_B_list0..M-1.png`` from ``folder`` as (M,S,S,3) uint8, or None when absent
    or older than the checkpoint (frames of an earlier model must not be scored)."""
    paths = []
    while (p := folder / layout.frame_name(clip, len(paths))).is_file():
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


def evaluate_clip(
    G: Generator,
    clip: Clip,
    size: int,
    device: torch.device,
    generated: np.ndarray | None = None,
    truth_intensity: list[float] | None = None,
    embed: Embedder | None = None,
    chunk: int = 32,
    region_threshold: float = REGION_THRESHOLD,
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
    rec.update(frame_metrics(frames, {"schedule": matched, "oracle": oracle}, region_threshold))
    rec["intensity"] = intensity_metrics(frames, inferred, truth_intensity)
    if embed is not None:
        ident = identity_metrics(
            embed, frames[0], truth, {"schedule": matched[1:], "oracle": oracle[1:]}
        )
        rec["input_face_found"] = ident.pop("input_face_found")
        for key, values in ident.items():
            rec[key].update(values)
        rec["real_face"] = real_face_figures(frames[0], frames[-1], list(generated))
    return rec, {"truth": frames, "schedule": matched, "oracle": oracle}


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
    validate(cfg)  # also when called without the command line
    clips = _eval_clips(cfg)
    if not cfg.no_faces:
        _check_face_tools()
    device = resolve_device(cfg.gpu_ids)
    model = load_generator(cfg.run_dir, cfg.epoch, size=cfg.fineSize, ema=not cfg.no_ema)
    model.select(cfg.expression)
    G = model.G.to(device)
    set_mode(G, dropout=False)
    ckpt_time = ckpt.generator_weights(cfg.run_dir, cfg.epoch).stat().st_mtime
    gen_dir = generated_frames_dir(cfg)
    records, videos = [], {}
    for clip in tqdm(clips, desc="evaluating", unit="clip", dynamic_ncols=True, disable=None):
        generated = (
            None
            if cfg.regenerate or cfg.no_ema
            else read_generated(gen_dir, clip.name, model.size, ckpt_time)
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
            "weights": model.weights,
            "train_config": ckpt.read_config(cfg.run_dir) or {},
        },
        "protocol": protocol_text(),
        "summary": _summary(records),
        "clips": records,
    }
    result = jsonable(result)
    write_reports(result, cfg.json_path, videos)
    return result


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The clip means, plus the real-face medians (``face_*``) where faces were measured."""
    out: dict[str, Any] = summarize(records)
    if any("real_face" in r for r in records):
        faces = summarize_faces([r.get("real_face") for r in records])
        out.update({f"face_{k}": v for k, v in faces.items()})
    return out


def protocol_text() -> str:
    """The evaluation protocol in words, stored with every result (the module docstring)."""
    doc = __doc__ or ""
    return doc.split("\n\n", 1)[1].rsplit("\n\n", 1)[0].strip()
