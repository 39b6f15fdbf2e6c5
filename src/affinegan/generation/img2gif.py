"""Turn the per-frame PNGs written by generate.py into one GIF (and optionally MP4) per clip.

Keeps the original AffineGAN ``img2gif.py`` command line and output layout:
frames ``<results_dir>/<exp>/<phase>_<epoch>/images/<clip>_fake_B_list<i>.png`` become
``<results_dir>/gifs/<exp>/<clip>_<epoch>.gif`` for every clip folder in ``<dataroot>/test/img``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from affinegan import layout
from affinegan.errors import AffineGANError
from affinegan.generation.video import write_gif, write_mp4

logger = logging.getLogger(__name__)


def _clip_names(dataroot: Path) -> list[str]:
    """Clip folder names under ``<dataroot>/test/img``, sorted, as the test set defines them."""
    img_dir = dataroot / "test" / "img"
    if not img_dir.is_dir():
        raise AffineGANError(
            f"{img_dir}: no such folder; pass --dataroot pointing at the dataset that holds "
            "test/img/<clip>/"
        )
    clips = sorted(p.name for p in img_dir.iterdir() if p.is_dir())
    if not clips:
        raise AffineGANError(f"{img_dir}: no clip folders; add test/img/<clip>/ folders first")
    return clips


def _frames_by_clip(images_dir: Path) -> dict[str, dict[int, Path]]:
    """Index ``<clip>_fake_B_list<i>.png`` files by clip and numeric frame index."""
    found: dict[str, dict[int, Path]] = {}
    for path in images_dir.iterdir():
        match = layout.FRAME_RE.fullmatch(path.name)
        if match:
            found.setdefault(match["clip"], {})[int(match["index"])] = path
    return found


def _clip_frame_paths(
    images_dir: Path, clip: str, frames: dict[int, Path], expected: int
) -> list[Path]:
    """Frame paths in numeric order; a gap means generation was interrupted, so it is an error."""
    if not frames:
        raise AffineGANError(
            f"{images_dir}: no frames {clip}_fake_B_list<i>.png for clip {clip!r}; "
            "run generate.py for this experiment, epoch and phase first"
        )
    missing = [i for i in range(max(frames) + 1) if i not in frames]
    if missing:
        raise AffineGANError(
            f"{images_dir / layout.frame_name(clip, missing[0])}: frame missing "
            f"({len(missing)} of {max(frames) + 1} absent); re-run generate.py first"
        )
    if len(frames) != expected:
        logger.warning(
            "%s: clip %r has %d frames, not 1/interval = %d; using all %d",
            images_dir,
            clip,
            len(frames),
            expected,
            len(frames),
        )
    return [frames[i] for i in sorted(frames)]


def _load_frames(paths: list[Path]) -> list[np.ndarray]:
    """Read PNG frames as RGB arrays, rejecting a clip whose frames differ in size."""
    arrays: list[np.ndarray] = []
    for path in paths:
        with Image.open(path) as im:
            arrays.append(np.asarray(im.convert("RGB")))
        if arrays[-1].shape != arrays[0].shape:
            raise AffineGANError(
                f"{path}: frame is {arrays[-1].shape[1]}x{arrays[-1].shape[0]} but {paths[0].name} "
                f"is {arrays[0].shape[1]}x{arrays[0].shape[0]}; re-run generate.py for this clip"
            )
    return arrays


def make_gifs(
    exp_names: list[str],
    dataroot: Path,
    results_dir: Path,
    epoch: str = "latest",
    phase: str = "test",
    interval: float = 0.05,
    fps: float = 10.0,
    mp4: bool = False,
) -> list[Path]:
    """Write one GIF (plus MP4 if ``mp4``) per experiment and clip; return the written paths.

    All inputs are checked before anything is written, so a typo in one experiment name does
    not leave a half-converted set of outputs.
    """
    if not 0 < interval <= 1:
        raise AffineGANError(f"--interval {interval}: must be in (0, 1], e.g. 0.05 for 20 frames")
    if fps <= 0:
        raise AffineGANError(f"--fps {fps}: must be positive, e.g. 10")
    if not exp_names:
        raise AffineGANError("--exp_names is empty: give comma-separated experiment names")
    expected = round(1 / interval)
    clips = _clip_names(Path(dataroot))
    results_dir = Path(results_dir)

    jobs: list[tuple[Path, list[Path]]] = []
    for exp in exp_names:
        images_dir = layout.results_folder(results_dir, exp, phase, epoch) / layout.IMAGES_DIR
        if not images_dir.is_dir():
            raise AffineGANError(
                f"{images_dir}: no such folder; run generate.py for experiment {exp!r} "
                "first (or check --results_dir, --epoch and --phase)"
            )
        found = _frames_by_clip(images_dir)
        for clip in clips:
            paths = _clip_frame_paths(images_dir, clip, found.get(clip, {}), expected)
            jobs.append((layout.gif_path(results_dir, exp, clip, epoch), paths))

    written: list[Path] = []
    for gif_path, paths in jobs:
        frames = _load_frames(paths)
        written.append(write_gif(frames, gif_path, fps=fps))
        if mp4:
            written.append(write_mp4(frames, gif_path.with_suffix(".mp4"), fps=fps))
    return written
