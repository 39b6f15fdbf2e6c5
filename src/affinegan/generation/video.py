"""Write generated frame sequences as GIF or MP4, and read them back.

Both writers keep every frame (an expression clip often starts or ends on identical frames,
and dropping them would change the clip's timing) and write atomically, so an interrupted
run never leaves a truncated file under the final name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import GifImagePlugin, Image, ImageSequence

from affinegan.errors import AffineGANError
from affinegan.files import atomic_output

FORMATS = ("png", "gif", "mp4")

# Browsers treat GIF delays under 2 centiseconds as 10, so faster rates would play slower.
_MIN_GIF_DELAY_CS = 2
# Pixels sampled to build the shared GIF palette; enough for faces, bounded for long clips.
_PALETTE_SAMPLE_PIXELS = 1 << 20


def parse_formats(text: str) -> tuple[str, ...]:
    """Parse a comma-separated format list such as ``"png,gif,mp4"`` (order kept, deduped)."""
    formats: list[str] = []
    for item in text.split(","):
        name = item.strip().lower()
        if not name or name in formats:
            continue
        if name not in FORMATS:
            raise AffineGANError(
                f"unknown output format {name!r} in {text!r}: "
                f"use a comma-separated list of {', '.join(FORMATS)} (e.g. 'png,gif')"
            )
        formats.append(name)
    if not formats:
        raise AffineGANError(
            f"no output format in {text!r}: give at least one of {', '.join(FORMATS)}"
        )
    return tuple(formats)


def _as_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Check that frames are same-sized HWC uint8 RGB arrays; fail early with the culprit."""
    if len(frames) == 0:
        raise ValueError("no frames to write")
    out = [np.ascontiguousarray(f) for f in frames]
    first = out[0]
    if first.dtype != np.uint8 or first.ndim != 3 or first.shape[2] != 3:
        raise ValueError(
            f"frames must be HxWx3 uint8 RGB, got {first.dtype} array of shape {first.shape}"
        )
    for i, frame in enumerate(out):
        if frame.shape != first.shape or frame.dtype != np.uint8:
            raise ValueError(
                f"frame {i} is {frame.dtype} {frame.shape}, but frame 0 is uint8 {first.shape}"
            )
    return out


def _shared_palette(frames: list[np.ndarray]) -> Image.Image:
    """Build one 256-colour palette for all frames, so colours do not flicker between frames."""
    stacked = np.concatenate(frames, axis=0)
    stride = max(
        1, math.ceil(math.sqrt(stacked.shape[0] * stacked.shape[1] / _PALETTE_SAMPLE_PIXELS))
    )
    sample = np.ascontiguousarray(stacked[::stride, ::stride])
    return Image.fromarray(sample, "RGB").quantize(256, method=Image.Quantize.MEDIANCUT)


def _join(images: list[np.ndarray], gap: int, axis: int) -> np.ndarray:
    """Images concatenated along ``axis`` (1: side by side, 0: one above the other), ``gap``
    white pixels apart."""
    shape = list(images[0].shape)
    shape[axis] = gap
    white = np.full(shape, 255, np.uint8)
    return np.concatenate([part for a in images for part in (white, a)][1:], axis=axis)


def tile(images: Sequence[np.ndarray], scale: int = 1, gap: int = 4) -> np.ndarray:
    """Same-sized HWC uint8 images side by side on white, each enlarged ``scale`` times by
    repeating pixels (a 64 px face stays sharp on a page)."""
    big = [np.kron(a, np.ones((scale, scale, 1), np.uint8)) for a in _as_frames(images)]
    return _join(big, gap, axis=1)


def stack(rows: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Same-sized HWC uint8 images one above the other on white (rows of ``tile``)."""
    return _join(_as_frames(rows), gap, axis=0)


def write_gif(frames: Sequence[np.ndarray], path: Path, fps: float = 10.0, loop: int = 0) -> Path:
    """Write HWC uint8 RGB frames as an animated GIF that loops ``loop`` times (0 = forever).

    Pillow's multi-frame GIF saver merges identical consecutive frames, so the container is
    assembled here frame by frame; every input frame becomes one GIF frame. GIF delays are
    whole centiseconds (and browsers slow down anything under 2), so ``fps`` is rounded to
    the nearest rate of the form 100/n, at most 50.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    arrays = _as_frames(frames)
    palette = _shared_palette(arrays)
    delay_cs = max(_MIN_GIF_DELAY_CS, round(100 / fps))
    indexed = [
        Image.fromarray(a, "RGB").quantize(palette=palette, dither=Image.Dither.NONE)
        for a in arrays
    ]
    header, _ = GifImagePlugin.getheader(indexed[0], info={"loop": loop})
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        fh.writelines(header)
        for im in indexed:
            fh.writelines(GifImagePlugin.getdata(im, duration=delay_cs * 10, disposal=1))
        fh.write(b";")
    return Path(path)


def write_mp4(frames: Sequence[np.ndarray], path: Path, fps: float = 10.0) -> Path:
    """Write HWC uint8 RGB frames as H.264/yuv420p MP4, the combination every player opens.

    yuv420p needs even dimensions, so odd-sized frames are padded by one row/column that
    repeats the edge pixels (no scaling, no black line); the video is then up to 1 px larger.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    arrays = _as_frames(frames)
    h, w = arrays[0].shape[:2]
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    with atomic_output(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (w + w % 2, h + h % 2),
            fps=fps,
            codec="libx264",
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            quality=None,
            macro_block_size=1,
            ffmpeg_log_level="error",
            output_params=["-crf", "18", "-preset", "veryfast", "-movflags", "+faststart"],
        )
        writer.send(None)
        try:
            for a in arrays:  # np.pad copies: only odd sizes need it
                writer.send(
                    np.ascontiguousarray(np.pad(a, pad, mode="edge") if h % 2 or w % 2 else a)
                )
        finally:
            writer.close()
    return Path(path)


def read_frames(path: Path) -> list[np.ndarray]:
    """Read a GIF or MP4 back into HWC uint8 RGB frames (for checks and re-encoding)."""
    path = Path(path)
    if not path.is_file():
        raise AffineGANError(f"{path}: no such video file; check the path or write it first")
    suffix = path.suffix.lower()
    if suffix == ".gif":
        with Image.open(path) as im:
            return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    if suffix == ".mp4":
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
        w, h = meta["size"]
        return [np.frombuffer(buf, np.uint8).reshape(h, w, 3).copy() for buf in reader]
    raise AffineGANError(
        f"{path}: cannot read {suffix or 'extensionless'} files; use a .gif or .mp4"
    )
