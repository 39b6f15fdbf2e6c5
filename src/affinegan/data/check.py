"""``affinegan check ROOT``: the dataset validator as a command that lists EVERY problem.

``dataset.scan_clips`` stops at the first problem, which suits a training run that must not
start on bad data; someone fixing a dataset wants the whole list at once, with counts that show
what the model will see (frames per clip, sizes, grey or colour, mask coverage). When no problem
is found, ``scan_clips`` runs too, so ``check`` passing means ``train`` will accept the data.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affinegan.command_options import SPLITS
from affinegan.data.dataset import list_frames, scan_clips
from affinegan.data.images import (
    DEFAULT_MAX_MEGAPIXELS,
    IMAGE_EXTENSIONS,
    megapixels,
    open_image,
)
from affinegan.errors import AffineGANError

MIN_FRAMES = {"train": 2, "test": 1}
MASK_ON = 192  # training binarises masks at 0.5 in [-1, 1], i.e. pixel values >= 192 count


@dataclass(frozen=True)
class _Decoded:
    """What one file told us: its size and mode, the masked fraction (masks), or the error."""

    size: tuple[int, int] = (0, 0)
    grey: bool = False
    mask_area: float | None = None
    error: str | None = None


def _decode(path: Path, mask: bool, max_pixels: int) -> _Decoded:
    """Through the loader training uses, so ``check`` sees exactly what the model will."""
    try:
        img = open_image(path, max_pixels)
    except AffineGANError as err:
        return _Decoded(error=str(err))
    area = float((np.asarray(img.convert("L")) >= MASK_ON).mean()) if mask else None
    return _Decoded(img.size, img.mode == "L", area)


@dataclass
class SplitStats:
    """Counts for one split (``train`` or ``test``)."""

    split: str
    frames_per_clip: list[int] = field(default_factory=list)
    sizes: Counter[tuple[int, int]] = field(default_factory=Counter)
    grey: int = 0
    colour: int = 0
    masks: int | None = None  # frames with a readable mask; None when masks were not checked
    mask_area: list[float] = field(default_factory=list)

    def lines(self) -> list[str]:
        n = self.frames_per_clip
        total = sum(n)
        out = [f"{self.split}: {len(n)} clip(s), {total} frame(s)"]
        if n:
            out[0] += (
                f"; frames per clip min {min(n)}, median {float(np.median(n)):g}, max {max(n)}"
            )
        sizes = ", ".join(f"{w}x{h} ({c})" for (w, h), c in self.sizes.most_common())
        out.append(f"  sizes: {sizes or '-'}; grey {self.grey}, colour {self.colour}")
        if self.masks is not None and total:
            area = f", mean area {np.mean(self.mask_area):.1%}" if self.mask_area else ""
            out.append(f"  masks: {self.masks} of {total} frames ({self.masks / total:.0%}){area}")
        return out


@dataclass
class CheckReport:
    """Everything ``check`` found: per-split counts, problems (fatal) and warnings."""

    root: Path
    splits: list[SplitStats] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        out = [f"dataset {self.root}"]
        for stats in self.splits:
            out += stats.lines()
        for title, items in (("warnings", self.warnings), ("problems", self.problems)):
            if items:
                out.append(f"{title} ({len(items)}):")
                out += [f"  - {item}" for item in items]
        out.append("OK" if self.ok else f"FAILED: {len(self.problems)} problem(s)")
        return out


def _clip_masks(
    clip_dir: Path, patch_dir: Path, frames: list[Path], report: CheckReport
) -> list[Path]:
    """The clip's masks, paired with its frames by file name; a missing one is a problem."""
    mask_dir = patch_dir / clip_dir.name
    if not mask_dir.is_dir():
        report.problems.append(
            f"{mask_dir}: mask folder for clip {clip_dir.name} not found; add masks with the "
            "frame names (affinegan prepare --masks) or train with --no_patch"
        )
        return []
    by_name = {p.name: p for p in list_frames(mask_dir)}
    missing = [f.name for f in frames if f.name not in by_name]
    if missing:
        report.problems.append(
            f"{mask_dir}: {len(missing)} of {len(frames)} masks missing, e.g. "
            f"{missing[0]}; masks need exactly the frame file names, or use --no_patch"
        )
    return [by_name[f.name] for f in frames if f.name in by_name]


def _check_frames(
    clip_dir: Path,
    stats: SplitStats,
    report: CheckReport,
    pool: ThreadPoolExecutor,
    max_pixels: int,
) -> dict[str, tuple[int, int]]:
    """Count, decode and tally the clip's frames; their sizes by file name."""
    frames = list_frames(clip_dir)
    stray = [
        p
        for p in clip_dir.iterdir()
        if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() not in IMAGE_EXTENSIONS)
    ]
    if stray:
        report.warnings.append(
            f"{clip_dir}: {len(stray)} non-image file(s) or folder(s) ignored, e.g. {stray[0].name}"
        )
    stats.frames_per_clip.append(len(frames))
    need = MIN_FRAMES[stats.split]
    if len(frames) < need:
        report.problems.append(
            f"{clip_dir}: clip has {len(frames)} frame(s) but needs at least {need} "
            "(the neutral first frame plus expression frames); add frames or remove the folder"
        )
    decoded = list(pool.map(lambda p: _decode(p, False, max_pixels), frames))
    for item in decoded:
        if item.error is not None:
            report.problems.append(item.error)
            continue
        stats.sizes[item.size] += 1
        stats.grey += item.grey
        stats.colour += not item.grey
    clip_sizes = {d.size for d in decoded if d.error is None}
    if len(clip_sizes) > 1:
        report.warnings.append(
            f"{clip_dir}: frames have {len(clip_sizes)} different sizes; each is resized to "
            "loadSize on its own, so the face may shift between frames"
        )
    return {f.name: d.size for f, d in zip(frames, decoded, strict=True)}


def _check_clip(
    clip_dir: Path,
    patch_dir: Path | None,
    stats: SplitStats,
    report: CheckReport,
    pool: ThreadPoolExecutor,
    max_pixels: int,
) -> None:
    frame_size = _check_frames(clip_dir, stats, report, pool, max_pixels)
    if patch_dir is None:
        return
    frames = [clip_dir / name for name in frame_size]
    masks = _clip_masks(clip_dir, patch_dir, frames, report)
    empty = 0
    mask_items = pool.map(lambda p: _decode(p, True, max_pixels), masks)
    for path, item in zip(masks, mask_items, strict=True):
        if item.error is not None:
            report.problems.append(item.error)
            continue
        stats.masks = (stats.masks or 0) + 1
        stats.mask_area.append(item.mask_area or 0.0)
        empty += not item.mask_area
        if frame_size[path.name] not in ((0, 0), item.size):
            report.warnings.append(
                f"{path}: mask is {item.size[0]}x{item.size[1]} but its frame is "
                f"{frame_size[path.name][0]}x{frame_size[path.name][1]}; masks should match"
            )
    if empty:
        report.warnings.append(
            f"{patch_dir / clip_dir.name}: {empty} mask(s) have no pixel >= {MASK_ON}, so the "
            "patch discriminator sees nothing there"
        )


def check_dataset(
    root: Path, use_patch: bool = True, max_pixels: int = megapixels(DEFAULT_MAX_MEGAPIXELS)
) -> CheckReport:
    """Collect every problem of the dataset at ``root`` (``train`` and ``test``) with counts."""
    root = Path(root)
    report = CheckReport(root)
    layout = f"{root}/train/img/<clip>/<frames>"
    if not root.is_dir():
        report.problems.append(f"{root}: dataset root not found; the expected layout is {layout}")
        return report
    present = [s for s in SPLITS if (root / s / "img").is_dir()]
    if not present:
        report.problems.append(
            f"{root}: neither train/img nor test/img found; the expected layout is {layout}"
        )
    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        for split in present:
            stats = SplitStats(split)
            report.splits.append(stats)
            img_dir = root / split / "img"
            clip_dirs = sorted(
                (d for d in img_dir.iterdir() if d.is_dir() and not d.name.startswith(".")),
                key=lambda d: d.name,
            )
            if not clip_dirs:
                report.problems.append(
                    f"{img_dir}: no clip folders; put each clip's frames in {img_dir}/<clip>/"
                )
                continue
            patch_dir = root / split / "patch" if use_patch and split == "train" else None
            if patch_dir is not None and not patch_dir.is_dir():
                report.problems.append(
                    f"{patch_dir}: mask folder not found; add masks (affinegan prepare --masks) "
                    "or train with --no_patch"
                )
                patch_dir = None
            if patch_dir is not None:
                stats.masks = 0
            for clip_dir in clip_dirs:
                _check_clip(clip_dir, patch_dir, stats, report, pool, max_pixels)
    finally:
        pool.shutdown()
    if report.ok:
        for split in present:  # the training-time validator must agree
            try:
                scan_clips(
                    root,
                    split,
                    use_patch=use_patch and split == "train",
                    min_frames=MIN_FRAMES[split],
                    check_images=False,
                )
            except AffineGANError as err:
                report.problems.append(str(err))
    return report
