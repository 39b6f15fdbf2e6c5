"""What generation writes for each face (PNG frames, GIF, MP4, an HTML row), shared by the
PyTorch and the onnxruntime backends. Imports no torch, so the onnxruntime path stays torch-free."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from affinegan.config import GenerateConfig, check_intensity, parse_alphas
from affinegan.errors import AffineGANError
from affinegan.generation.curves import alpha_curve
from affinegan.generation.video import write_gif, write_mp4
from affinegan.layout import IMAGES_DIR, frame_name, input_name

GIF_MAX_WIDTH = 640  # wider videos are downscaled for their GIF (generate says so once)

Row = list[tuple[str, str]]


def resolve_alphas(cfg: GenerateConfig) -> list[float]:
    """--alphas, else --num_frames along --curve (peak included), else the original --interval."""
    if cfg.alphas:
        return parse_alphas(cfg.alphas)
    if cfg.num_frames:
        return alpha_curve(cfg.curve, cfg.num_frames, check_intensity(cfg.peak, "--peak"))
    if not 0 < cfg.interval <= 1:
        raise AffineGANError(f"--interval {cfg.interval}: expected a value in (0, 1]")
    return [i * cfg.interval for i in range(int(1.0 / cfg.interval + 1e-9))]  # as the original


def input_photos(
    cfg: GenerateConfig, first_frames: Callable[[Path, str], list[tuple[str, Path]]]
) -> list[tuple[str, Path]]:
    """(name, photo) per input: the --input files, else ``first_frames(dataroot, phase)``."""
    if cfg.input:
        paths = [Path(p) for p in cfg.input]
        for p in paths:
            if not p.is_file():
                raise AffineGANError(f"{p}: no such input image")
        names = [p.stem for p in paths]
        unique = [n if names.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(names)]
        return list(zip(unique, paths, strict=True))[: cfg.num_test]
    if not cfg.dataroot:
        raise AffineGANError("give --dataroot (a dataset with test/img/<clip>/) or --input PHOTO")
    root, phase = Path(cfg.dataroot), cfg.phase
    if not (root / phase / "img").is_dir():  # both layouts: a multi-expression root is common
        raise AffineGANError(
            f"--dataroot {root}: no {phase}/img/ folder; give a dataset with "
            f"{phase}/img/<clip>/<frames>, or one expression of a multi-expression root "
            f"(<root>/<expression>/{phase}/img/<clip>/): --dataroot <root>/<expression>"
        )
    return first_frames(root, phase)[: cfg.num_test]


def gif_frames(frames: np.ndarray) -> list[np.ndarray]:
    """Frames for a GIF: at most ``GIF_MAX_WIDTH`` wide. A GIF has 256 colours and no
    inter-frame compression, so a photo-sized one would be tens of megabytes; the MP4 and
    PNGs keep the full size."""
    h, w = frames.shape[1:3]
    if w <= GIF_MAX_WIDTH:
        return list(frames)
    size = (GIF_MAX_WIDTH, max(1, round(h * GIF_MAX_WIDTH / w)))
    return [np.asarray(Image.fromarray(f).resize(size, Image.LANCZOS)) for f in frames]


def write_face(
    out_dir: Path,
    clip: str,
    face: np.ndarray,
    frames: np.ndarray,
    alphas: list[float],
    formats: tuple[str, ...],
    fps: float,
) -> Row:
    """Save one face's input (H,W,3 uint8) and frames (N,H,W,3 uint8); its row of index.html."""
    images = out_dir / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    Image.fromarray(face).save(images / input_name(clip))
    row = [("input", f"{IMAGES_DIR}/{input_name(clip)}")]
    if "png" in formats:
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(images / frame_name(clip, i))
        row += [
            (f"alpha {a:.2f}", f"{IMAGES_DIR}/{frame_name(clip, i)}") for i, a in enumerate(alphas)
        ]
    if "gif" in formats:
        write_gif(gif_frames(frames), out_dir / f"{clip}.gif", fps)
        row.append(("GIF", f"{clip}.gif"))
    if "mp4" in formats:
        write_mp4(list(frames), out_dir / f"{clip}.mp4", fps)
        row.append(("MP4", f"{clip}.mp4"))
    return row
