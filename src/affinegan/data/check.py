"""``affinegan check ROOT``: the dataset validator as a command that lists EVERY problem.

``dataset.walk_clips`` is the one validator: ``scan_clips`` stops at its first problem, which
suits a training run that must not start on bad data; someone fixing a dataset wants the whole
list at once, with counts that show what the model will see (frames per clip, sizes, grey or
colour, mask coverage), so ``check`` collects every problem and adds the counts and warnings.
``check`` passing therefore means ``train`` accepts the data. A multi-expression root
(``<root>/<expression>/train/img/<clip>/``) is checked one expression at a time, each problem
and warning prefixed with its expression.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affinegan.cli.command_options import SPLITS
from affinegan.data.dataset import Clip, expression_roots, walk_clips
from affinegan.data.images import (
    DEFAULT_MAX_MEGAPIXELS,
    IMAGE_EXTENSIONS,
    megapixels,
    open_image,
)

MIN_FRAMES = {"train": 2, "test": 1}
MASK_ON = 192  # training binarises masks at 0.5 in [-1, 1], i.e. pixel values >= 192 count


@dataclass(frozen=True)
class _Decoded:
    """What one readable file told us: its size and mode, and the masked fraction (masks)."""

    size: tuple[int, int] = (0, 0)
    grey: bool = False
    mask_area: float | None = None


def _decode(path: Path, mask: bool, max_pixels: int) -> _Decoded:
    """Through the loader training uses, so ``check`` sees exactly what the model will; an
    unreadable or oversized file raises ``AffineGANError`` (``walk_clips`` makes it a problem)."""
    img = open_image(path, max_pixels)
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


def _frame_stats(
    clip_dir: Path, frames: tuple[Path, ...], decoded: dict[Path, _Decoded], stats: SplitStats
) -> tuple[dict[str, tuple[int, int] | None], list[str]]:
    """Tally the clip's readable frames; their sizes by file name, and the clip's warnings."""
    warnings = []
    stray = [
        p
        for p in clip_dir.iterdir()
        if not p.name.startswith(".") and (p.is_dir() or p.suffix.lower() not in IMAGE_EXTENSIONS)
    ]
    if stray:
        warnings.append(
            f"{clip_dir}: {len(stray)} non-image file(s) or folder(s) ignored, e.g. {stray[0].name}"
        )
    stats.frames_per_clip.append(len(frames))
    sizes: dict[str, tuple[int, int] | None] = {}
    for frame in frames:
        item = decoded.get(frame)  # None: unreadable, already a problem
        sizes[frame.name] = None if item is None else item.size
        if item is not None:
            stats.sizes[item.size] += 1
            stats.grey += item.grey
            stats.colour += not item.grey
    distinct = {size for size in sizes.values() if size is not None}
    if len(distinct) > 1:
        warnings.append(
            f"{clip_dir}: frames have {len(distinct)} different sizes; each is resized to "
            "loadSize on its own, so the face may shift between frames"
        )
    return sizes, warnings


def _mask_stats(
    mask_dir: Path,
    sizes: dict[str, tuple[int, int] | None],
    decoded: dict[Path, _Decoded],
    stats: SplitStats,
) -> list[str]:
    """Tally the clip's readable masks (named like its frames); the clip's mask warnings."""
    warnings, empty = [], 0
    for name, frame_size in sizes.items():
        item = decoded.get(mask_dir / name)
        if item is None:  # missing or unreadable: already a problem
            continue
        stats.masks = (stats.masks or 0) + 1
        stats.mask_area.append(item.mask_area or 0.0)
        empty += not item.mask_area
        if frame_size is not None and frame_size != item.size:
            warnings.append(
                f"{mask_dir / name}: mask is {item.size[0]}x{item.size[1]} but its frame is "
                f"{frame_size[0]}x{frame_size[1]}; masks should match"
            )
    if empty:
        warnings.append(
            f"{mask_dir}: {empty} mask(s) have no pixel >= {MASK_ON}, so the patch "
            "discriminator sees nothing there"
        )
    return warnings


def _check_split(
    root: Path, split: str, use_patch: bool, max_pixels: int, report: CheckReport, label: str
) -> None:
    """Every problem ``walk_clips`` finds in ``root/split`` (prefixed ``label: ``), plus counts."""
    prefix = f"{label}: " if label else ""
    decoded: dict[Path, _Decoded] = {}

    def inspect(path: Path, mask: bool) -> None:
        decoded[path] = _decode(path, mask, max_pixels)

    clips: list[Clip] = []
    for item in walk_clips(root, split, use_patch, MIN_FRAMES[split], inspect=inspect):
        if isinstance(item, Clip):
            clips.append(item)
        else:
            report.problems.append(prefix + item)
    if not (root / split / "img").is_dir():
        return
    stats = SplitStats(f"{label}/{split}" if label else split)
    report.splits.append(stats)
    patch_dir = root / split / "patch"
    if use_patch and patch_dir.is_dir():
        stats.masks = 0
    for clip in clips:
        sizes, warnings = _frame_stats(
            root / split / "img" / clip.name, clip.frames, decoded, stats
        )
        if stats.masks is not None:
            warnings += _mask_stats(patch_dir / clip.name, sizes, decoded, stats)
        report.warnings += [prefix + w for w in warnings]


def check_dataset(
    root: Path, use_patch: bool = True, max_pixels: int = megapixels(DEFAULT_MAX_MEGAPIXELS)
) -> CheckReport:
    """Collect every problem of the dataset at ``root`` (``train`` and ``test``) with counts;
    a multi-expression root is checked expression by expression. Masks are checked in ``train``
    only, as training is the only command that reads them."""
    root = Path(root)
    report = CheckReport(root)
    found = dict(expression_roots(root, "test")) | dict(expression_roots(root, "train"))
    for label, dataset in sorted(found.items()) or [("", root)]:
        present = [s for s in SPLITS if (dataset / s / "img").is_dir()]
        for split in present or ["train"]:  # none: walk_clips names the missing layout
            _check_split(dataset, split, use_patch and split == "train", max_pixels, report, label)
    return report
