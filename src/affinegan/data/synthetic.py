"""The built-in dataset for the demo, tests and benchmarks: clips of procedural cartoon faces
(``cartoon.py`` draws them) in the AffineGAN layout, with exact mouth masks and the intensity of
every frame recorded beside it.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from affinegan.data.cartoon import (
    EXPRESSIONS,
    check_expression,
    check_size,
    check_zoom,
    render_face,
    render_mix,
)
from affinegan.errors import AffineGANError
from affinegan.files import atomic_output

__all__ = [
    "EXPRESSIONS",
    "README_MARKER",
    "render_dataset",
    "render_expressions",
    "render_face",
    "render_mix_clips",
]

README_MARKER = "Synthetic AffineGAN dataset"
_EASINGS: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
    lambda t: t,  # linear
    lambda t: t * t,  # ease-in
    lambda t: 1.0 - (1.0 - t) ** 2,  # ease-out
    lambda t: t * t * (3.0 - 2.0 * t),  # ease-in-out (smoothstep)
    lambda t: t**3 * (t * (6.0 * t - 15.0) + 10.0),  # smootherstep
)


@dataclass(frozen=True)
class _ClipPlan:
    identity_seed: int
    intensity: list[float]
    offsets: list[tuple[float, float]]


def _plan_clip(seed: int, split: int, index: int, size: int, lo: int, hi: int) -> _ClipPlan:
    """Per-clip randomness from ``default_rng([seed, split, index])``: order-independent.

    Identity seeds are even for train and odd for test, so held-out identities never repeat
    a training identity.
    """
    rng = np.random.default_rng([seed, split, index])
    identity_seed = 2 * int(rng.integers(0, 2**30)) + split
    n = int(rng.integers(lo, hi + 1))
    ease = _EASINGS[int(rng.integers(len(_EASINGS)))]
    peak = rng.uniform(0.8, 1.0)
    t = np.linspace(0.0, 1.0, n)
    intensity = np.round(peak * ease(t), 6)
    amp = rng.uniform(0.2, 0.5, 2) * size / 64.0
    freq = rng.uniform(0.3, 1.0, 2)
    phase = rng.uniform(0.0, 2 * math.pi, 2)
    wave = np.sin(2 * math.pi * freq * t[:, None] + phase) - np.sin(phase)  # 0 at the neutral frame
    offsets = [(float(dx), float(dy)) for dx, dy in amp * wave]
    return _ClipPlan(identity_seed, [float(v) for v in intensity], offsets)


def _save_png(image: Image.Image, path: Path) -> None:
    """Write then rename, so an interrupted run never leaves a truncated PNG behind (no fsync:
    thousands of frames, remade from the seed, would wait seconds for the disk)."""
    with atomic_output(path, fsync=False) as tmp:
        image.save(tmp, format="PNG")


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path, fsync=False) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _prepare(out: Path, readme: str) -> None:
    """Clear a previous synthetic render (stale frames would corrupt clips); never foreign data."""
    if out.exists() and not out.is_dir():
        raise AffineGANError(f"{out} is a file; give a folder for the synthetic dataset")
    marker = out / "README.txt"
    ours = marker.is_file() and marker.read_text(encoding="utf-8").startswith(README_MARKER)
    for split in ("train", "test"):
        folder = out / split
        if folder.is_dir() and any(folder.iterdir()):
            if not ours:
                raise AffineGANError(
                    f"{folder} holds data that is not a synthetic dataset; choose an empty folder"
                )
            shutil.rmtree(folder)
    out.mkdir(parents=True, exist_ok=True)
    _write_text(marker, readme)


def _write_clip(
    root: Path,
    name: str,
    expression: str,
    size: int,
    plan: _ClipPlan,
    masks: bool,
    also: dict[str, list[float]] | None = None,
    zoom: float = 1.0,
) -> None:
    """One clip: ``expression`` at the plan's intensities, plus ``also``'s expressions at theirs
    (a mix); the meta file records every frame's intensities."""
    img_dir = root / "img" / name
    img_dir.mkdir(parents=True, exist_ok=True)
    patch_dir = root / "patch" / name
    if masks:
        patch_dir.mkdir(parents=True, exist_ok=True)
    frames = [f"{k + 1:04d}.png" for k in range(len(plan.intensity))]
    curves = {expression: plan.intensity, **(also or {})}
    for k, (frame_name, offset) in enumerate(zip(frames, plan.offsets, strict=True)):
        levels = {e: c[k] for e, c in curves.items()}
        frame, mouth = render_mix(plan.identity_seed, levels, size, offset, zoom)
        _save_png(Image.fromarray(frame), img_dir / frame_name)
        if masks:
            _save_png(Image.fromarray(mouth), patch_dir / frame_name)
    meta = {
        "expression": expression,
        "frames": frames,
        "intensity": plan.intensity,
        "identity_seed": plan.identity_seed,
        **({"intensities": curves} if also else {}),
        **({"zoom": zoom} if zoom != 1.0 else {}),
    }
    (root / "meta").mkdir(parents=True, exist_ok=True)
    _write_text(root / "meta" / f"{name}.json", json.dumps(meta, indent=1) + "\n")


def _zoom_note(zoom: float) -> str:
    return f" zoom={zoom:g}" if zoom != 1.0 else ""


def _check_clip_args(
    clips: int, size: int, seed: int, min_frames: int, max_frames: int, zoom: float
) -> None:
    """The arguments every clip writer shares, checked before anything is written, so a bad
    call fails with one line instead of a half-written dataset."""
    check_size(size)
    check_zoom(zoom)
    if clips < 1:
        raise AffineGANError(f"clips must be >= 1, got {clips}")
    if seed < 0:
        raise AffineGANError(f"seed must be >= 0, got {seed}")
    if min_frames < 2:
        raise AffineGANError(f"min_frames must be >= 2 (neutral plus one), got {min_frames}")
    if max_frames < min_frames:
        raise AffineGANError(f"max_frames ({max_frames}) must be >= min_frames ({min_frames})")


def render_dataset(
    out: Path,
    expression: str = "smile",
    clips: int = 12,
    test_clips: int = 2,
    size: int = 64,
    seed: int = 0,
    min_frames: int = 8,
    max_frames: int = 30,
    zoom: float = 1.0,
) -> Path:
    """Write a dataset in the AffineGAN clip layout under `out`; returns `out`.

    ``train/img/clip_NNNN`` frames go from neutral (intensity 0, frame 0001) to a peak in
    [0.8, 1] with a per-clip easing, with exact mouth masks in ``train/patch``; ``test/img``
    holds full videos of held-out identities for evaluation. ``<split>/meta/<clip>.json``
    records the intensity of each frame. ``zoom`` > 1 frames close-ups (``render_face``): the
    same identities, expressions and head motion, the face larger in the frame. The same
    arguments always give byte-identical files.
    """
    check_expression(expression)
    _check_clip_args(clips, size, seed, min_frames, max_frames, zoom)
    if test_clips < 0:
        raise AffineGANError(f"test_clips must be >= 0, got {test_clips}")
    out = Path(out)
    readme = (
        f"{README_MARKER} from affinegan.data.synthetic.render_dataset: expression={expression} "
        f"seed={seed} size={size} clips={clips} test_clips={test_clips} "
        f"frames={min_frames}-{max_frames}{_zoom_note(zoom)}\n"
    )
    _prepare(out, readme)
    for split, prefix, count in ((0, "clip", clips), (1, "test", test_clips)):
        root = out / ("train", "test")[split]
        for index in range(count):
            plan = _plan_clip(seed, split, index, size, min_frames, max_frames)
            name = f"{prefix}_{index:04d}"
            _write_clip(root, name, expression, size, plan, masks=split == 0, zoom=zoom)
    return out


def render_expressions(out: Path, expressions: Sequence[str] = EXPRESSIONS, **kw: Any) -> Path:
    """A multi-expression root: ``render_dataset(out / e, e, **kw)`` for each expression, side by
    side (the same seed gives every expression the same identities)."""
    if not expressions or len(set(expressions)) != len(expressions):
        raise AffineGANError(f"expressions {list(expressions)}: name each expression once")
    for e in expressions:
        render_dataset(Path(out) / e, e, **kw)
    return Path(out)


def render_mix_clips(
    out: Path,
    expressions: Sequence[str],
    clips: int = 6,
    size: int = 64,
    seed: int = 0,
    min_frames: int = 8,
    max_frames: int = 30,
    zoom: float = 1.0,
) -> Path:
    """Test clips (``<out>/test/img/mix_NNNN``, held-out identities) in which several expressions
    rise together from neutral: the first on the clip's curve to a peak in [0.8, 1], each other
    on the same curve scaled by a factor in [0.5, 1]. ``<out>/test/meta/<clip>.json`` holds each
    expression's intensities (``intensities``), to measure a multi-expression model's mixes."""
    for e in expressions:
        check_expression(e)
    _check_clip_args(clips, size, seed, min_frames, max_frames, zoom)
    if len(expressions) < 2 or len(set(expressions)) != len(expressions):
        raise AffineGANError(f"a mix needs two or more different expressions, got {expressions}")
    out = Path(out)
    names = "+".join(expressions)
    readme = f"{README_MARKER} from render_mix_clips: {names} seed={seed} size={size}"
    _prepare(out, f"{readme}{_zoom_note(zoom)}\n")
    for index in range(clips):
        plan = _plan_clip(seed, 1, index, size, min_frames, max_frames)
        rng = np.random.default_rng([seed, 2, index])
        scale = {e: float(rng.uniform(0.5, 1.0)) for e in expressions[1:]}
        also = {e: [round(a * f, 6) for a in plan.intensity] for e, f in scale.items()}
        _write_clip(out / "test", f"mix_{index:04d}", expressions[0], size, plan, False, also, zoom)
    return out
