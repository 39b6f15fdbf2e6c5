"""Clip folders -> training samples (docs/method.md, "Data").

Layout: ``<root>/<phase>/img/<clip>/<frames>``, optional masks with the same frame names under
``<root>/<phase>/patch/<clip>/``; a multi-expression root holds one such dataset per expression,
``<root>/<expression>/<phase>/...``. Frames sort by name and the FIRST is the neutral face ``A``.
A sample is ``A`` plus ``K`` frames ``B_k`` drawn with replacement from frames 2..N, all sharing
one crop offset and one flip decision.

Every random choice of a sample comes from ``numpy.random.default_rng([seed, epoch, index])``,
so a sample depends only on those three numbers: not on worker count, batch size or on how many
samples came before it, which makes a resumed run see exactly the samples it would have seen.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from affinegan.data.images import (
    DEFAULT_MAX_MEGAPIXELS,
    IMAGE_EXTENSIONS,
    check_image,
    load_mask,
    megapixels,
    open_image,
    uint8_to_unit,
)
from affinegan.errors import AffineGANError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clip:
    """One video: its frames in order (``frames[0]`` is the neutral face) and optional masks."""

    name: str
    frames: tuple[Path, ...]
    masks: tuple[Path, ...] | None
    expression: int = 0  # index into the run's expressions (multi-expression roots)


def list_frames(folder: Path) -> list[Path]:
    """Image files in ``folder`` sorted by name; hidden files and non-image clutter are skipped."""
    frames = []
    for entry in Path(folder).iterdir():
        if entry.is_dir():
            continue
        if entry.name.startswith(".") or entry.suffix.lower() not in IMAGE_EXTENSIONS:
            log.debug("skipping non-image file %s", entry)
            continue
        frames.append(entry)
    return sorted(frames, key=lambda p: p.name)


def _clip_masks(
    clip_dir: Path, patch_dir: Path, frames: list[Path]
) -> tuple[list[Path], str | None]:
    """The clip's masks found, matched to its frames by file name as the original does, and the
    problem when any is missing."""
    mask_dir = patch_dir / clip_dir.name
    if not mask_dir.is_dir():
        return [], (
            f"{mask_dir}: mask folder for clip {clip_dir} not found; add masks with the same "
            "frame names (affinegan prepare --masks) or train without masks using --no_patch"
        )
    by_name = {p.name: p for p in list_frames(mask_dir)}
    missing = [f.name for f in frames if f.name not in by_name]
    found = [by_name[f.name] for f in frames if f.name in by_name]
    if not missing:
        return found, None
    return found, (
        f"{mask_dir / missing[0]}: mask not found; {len(missing)} of {len(frames)} masks missing, "
        f"e.g. {missing[0]}; masks need exactly the frame file names of {clip_dir} "
        "(affinegan prepare --masks), or use --no_patch"
    )


def _image_problems(
    files: list[tuple[Path, bool]], inspect: Callable[[Path, bool], object]
) -> Iterator[str]:
    """Open every frame and mask once, so a broken or oversized file fails the scan, not a run.

    Decoding releases the GIL, so threads scale; problems come in file order.
    """

    def attempt(item: tuple[Path, bool]) -> str | None:
        try:
            inspect(*item)
        except AffineGANError as err:
            return str(err)
        return None

    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        for problem in pool.map(attempt, files):
            if problem is not None:
                yield problem
    finally:
        pool.shutdown(cancel_futures=True)


def _clip_dirs(img_dir: Path) -> list[Path]:
    return sorted(
        (d for d in img_dir.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: d.name,
    )


def walk_clips(
    root: Path,
    phase: str = "train",
    use_patch: bool = False,
    min_frames: int = 2,
    max_clips: int | None = None,
    check_images: bool = True,
    max_pixels: int = megapixels(DEFAULT_MAX_MEGAPIXELS),
    inspect: Callable[[Path, bool], object] | None = None,
) -> Iterator[Clip | str]:
    """THE dataset validator: every clip under ``root/phase`` and every problem, as found.

    A ``str`` item is a problem, one line naming the path and the fix; a ``Clip`` is a clip
    (also a faulty one, so counts stay complete; its ``masks`` are None when any is missing).
    ``scan_clips`` stops at the first problem, ``affinegan check`` lists them all. ``max_clips``
    keeps the first N clips in sorted order (the original's ``--max_dataset_size``). With
    ``check_images`` every file is opened once after the clips, by ``inspect(path, is_mask)``
    (default: ``check_image``, which refuses images larger than ``max_pixels``), whose
    ``AffineGANError`` is the problem.
    """
    root = Path(root)
    img_dir, patch_dir = root / phase / "img", root / phase / "patch"
    layout = f"{root}/{phase}/img/<clip>/<frames>"
    if not root.is_dir():
        yield f"{root}: dataset root not found; the expected layout is {layout}"
        return
    if not img_dir.is_dir():
        yield f"{img_dir}: folder not found; the expected layout is {layout}"
        return
    if use_patch and not patch_dir.is_dir():
        yield (
            f"{patch_dir}: mask folder not found; add masks as {patch_dir}/<clip>/<frames> with "
            "the same names as the frames (affinegan prepare --masks), or train without masks "
            "using --no_patch"
        )
        use_patch = False  # one problem for the folder, not one per clip
    clip_dirs = _clip_dirs(img_dir)
    if not clip_dirs:
        yield f"{img_dir}: no clip folders found; put each clip's frames in {img_dir}/<clip>/"
        return
    files: list[tuple[Path, bool]] = []
    for clip_dir in clip_dirs[:max_clips]:
        frames = list_frames(clip_dir)
        if len(frames) < min_frames:
            yield (
                f"{clip_dir}: clip has {len(frames)} frame(s) but needs at least {min_frames} "
                "(the neutral first frame plus expression frames); add frames or remove the folder"
            )
        files += [(p, False) for p in frames]
        masks, problem = _clip_masks(clip_dir, patch_dir, frames) if use_patch else ([], None)
        if problem is not None:
            yield problem
        files += [(p, True) for p in masks]
        complete = use_patch and problem is None
        yield Clip(clip_dir.name, tuple(frames), tuple(masks) if complete else None)
    if check_images:
        yield from _image_problems(files, inspect or (lambda p, _: check_image(p, max_pixels)))


def scan_clips(root: Path, phase: str = "train", **options: Any) -> list[Clip]:
    """The clips under ``root/phase``, validated by ``walk_clips`` (``options``: its keywords,
    ``use_patch``, ``min_frames``, ``max_clips``, ``check_images``, ``max_pixels``) before any
    training or generation: its first problem raises ``AffineGANError``, so a bad dataset fails
    in seconds instead of hours into a run.
    """
    started = time.perf_counter()
    clips = []
    walk = walk_clips(root, phase, **options)
    try:
        for item in walk:
            if isinstance(item, str):
                raise AffineGANError(item)
            clips.append(item)
    finally:
        walk.close()
    log.info(
        "found %d clips (%d frames) in %s in %.2fs",
        len(clips),
        sum(len(c.frames) for c in clips),
        Path(root) / phase / "img",
        time.perf_counter() - started,
    )
    return clips


def expression_roots(root: Path, phase: str = "train") -> list[tuple[str, Path]]:
    """(name, dataset root) of each expression of a multi-expression root, a folder of
    single-expression datasets side by side (``<root>/<expression>/<phase>/img/<clip>``), in
    name order; [] when ``root`` is itself a single-expression dataset (``<root>/<phase>/img``).
    A root laid out both ways is refused: which clips a run trains on must not be a guess."""
    root = Path(root)
    if not root.is_dir():
        return []
    subs = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    found = sorted((d.name, d) for d in subs if (d / phase / "img").is_dir())
    if found and (root / phase / "img").is_dir():
        raise AffineGANError(
            f"{root}: holds both {phase}/img/ (one expression's clips) and expression folders "
            f"({', '.join(n for n, _ in found)}: <root>/<expression>/{phase}/img/); move one "
            "layout out, so that which clips are read is not a guess"
        )
    return [] if (root / phase / "img").is_dir() else found


def scan_expressions(
    root: Path, phase: str = "train", names: Sequence[str] = (), **scan: object
) -> tuple[list[str], list[Clip]]:
    """The expressions and clips of a dataset root, checked like ``scan_clips`` (``scan``: its
    options, ``max_clips`` per expression). A single-expression root gives ([], its clips); a
    multi-expression one the expression names in index order and clips tagged with their index,
    named ``<expression>_<clip>``. ``names`` picks expressions of a multi-expression root."""
    found = dict(expression_roots(root, phase))
    if not found:
        if names:
            raise AffineGANError(
                f"{root}: --expressions {','.join(names)} needs a multi-expression root, "
                f"<root>/<expression>/{phase}/img/<clip>/; this one is a single dataset"
            )
        return [], scan_clips(root, phase, **scan)
    chosen = list(names) or list(found)
    missing = [n for n in chosen if n not in found]
    if missing:
        raise AffineGANError(
            f"{Path(root) / missing[0]}: no expression {missing[0]!r} here (found "
            f"{', '.join(found)}); fix --expressions or add {missing[0]}/{phase}/img/<clip>/"
        )
    clips = []
    for index, name in enumerate(chosen):
        for clip in scan_clips(found[name], phase, **scan):
            clips.append(replace(clip, name=f"{name}_{clip.name}", expression=index))
    return chosen, clips


def _decode_resized(path: Path, size: int, mask: bool, max_pixels: int) -> np.ndarray:
    """uint8 ``(size,size)`` for grey files and masks, else ``(size,size,3)``.

    Grey frames stay one channel in the cache (3x smaller); resizing grey then replicating gives
    exactly the same pixels as converting to RGB first.
    """
    if mask:
        return np.asarray(load_mask(path, size, max_pixels))
    return np.asarray(open_image(path, max_pixels).resize((size, size), Image.BICUBIC))


class ClipDataset(torch.utils.data.Dataset):
    """One training sample per clip: A plus K targets drawn WITH replacement from frames 2..N.

    Decoded, resized frames are cached per process up to ``cache_mb`` (then no more are added):
    decoding dominates small-model training, and each clip is visited once per epoch, so the
    cache pays off across epochs, i.e. with ``persistent_workers=True`` when workers are used.
    The epoch lives in shared memory so ``set_epoch`` reaches persistent workers too; call it
    before iterating the DataLoader.
    """

    def __init__(
        self,
        clips: Sequence[Clip],
        load_size: int = 286,
        fine_size: int = 256,
        num_targets: int = 5,
        flip: bool = True,
        use_patch: bool = False,
        seed: int = 0,
        cache_mb: int = 512,
        max_pixels: int = megapixels(DEFAULT_MAX_MEGAPIXELS),
    ) -> None:
        if fine_size > load_size:
            raise AffineGANError(
                f"fine_size {fine_size} is larger than load_size {load_size}; "
                "set --loadSize >= --fineSize"
            )
        for clip in clips:
            if len(clip.frames) < 2:
                raise AffineGANError(
                    f"{clip.frames[0].parent if clip.frames else clip.name}: clip has "
                    f"{len(clip.frames)} frame(s), training needs at least 2; add frames or "
                    "remove the folder"
                )
            if use_patch and clip.masks is None:
                raise AffineGANError(
                    f"{clip.frames[0].parent}: clip has no masks; scan it with use_patch=True "
                    "or train with --no_patch"
                )
        self.clips = list(clips)
        self.load_size = load_size
        self.fine_size = fine_size
        self.num_targets = num_targets
        self.flip = flip
        self.use_patch = use_patch
        self.seed = seed
        self.max_pixels = max_pixels
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._cache: dict[tuple[Path, bool], np.ndarray] = {}
        self._cache_bytes = 0
        self._cache_limit = cache_mb * 2**20

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose samples ``__getitem__`` returns (seen by all workers)."""
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        return len(self.clips)

    def _pixels(self, path: Path, mask: bool) -> np.ndarray:
        key = (path, mask)
        arr = self._cache.get(key)
        if arr is None:
            arr = _decode_resized(path, self.load_size, mask, self.max_pixels)
            if self._cache_bytes + arr.nbytes <= self._cache_limit:
                self._cache[key] = arr
                self._cache_bytes += arr.nbytes
        return arr

    def _stack(self, paths: Sequence[Path], x: int, y: int, flip: bool, mask: bool) -> torch.Tensor:
        """Crop every file at the SAME offset, flip them all or none -> ``(n,3,S,S)`` in [-1,1]."""
        s = self.fine_size
        out = np.empty((len(paths), 3, s, s), dtype=np.uint8)
        for i, path in enumerate(paths):
            crop = self._pixels(path, mask)[y : y + s, x : x + s]
            if flip:
                crop = crop[:, ::-1]
            out[i] = crop[None] if crop.ndim == 2 else crop.transpose(2, 0, 1)
        return uint8_to_unit(out)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        clip = self.clips[index]
        rng = np.random.default_rng([self.seed, int(self._epoch), index])
        targets = rng.integers(1, len(clip.frames), size=self.num_targets)
        # The original's offset range: randint(0, max(0, load - fine - 1)), both ends included.
        x, y = (int(v) for v in rng.integers(0, max(0, self.load_size - self.fine_size - 1) + 1, 2))
        flip = self.flip and bool(rng.random() < 0.5)
        picks = [0, *targets.tolist()]

        images = self._stack([clip.frames[i] for i in picks], x, y, flip, mask=False)
        sample: dict[str, torch.Tensor | str] = {
            "A": images[0],
            "B": images[1:],
            "B_index": torch.from_numpy(targets),  # frame numbers of the targets
            "B_position": torch.from_numpy(targets / (len(clip.frames) - 1)).float(),  # in [0, 1]
            "clip": clip.name,
            "expression": torch.tensor(clip.expression),  # picks the residual stream and D head
        }
        if self.use_patch:
            masks = (
                self._stack([clip.masks[i] for i in picks], x, y, flip, mask=True) >= 0.5
            ).float()
            sample["mask_A"] = masks[0]
            sample["mask_B"] = masks[1:]
        return sample


class ResumableSampler(torch.utils.data.Sampler[int]):
    """Epoch-seeded order that can start mid-epoch, so a resumed run sees exactly the samples it
    would have; with ``world_size > 1`` each rank takes a disjoint shard (padded by wrapping)."""

    def __init__(
        self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        if n < 1:
            raise ValueError(f"ResumableSampler needs at least one item, got n={n}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    def _shard_size(self) -> int:
        return math.ceil(self.n / self.world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch; ``start`` = items of this rank already consumed in it (resume)."""
        if not 0 <= start <= self._shard_size():
            raise ValueError(f"start {start} is outside 0..{self._shard_size()} for this epoch")
        self.epoch = epoch
        self.start = start

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            order = torch.randperm(self.n, generator=gen).tolist()
        else:
            order = list(range(self.n))  # the original's --serial_batches
        total = self._shard_size() * self.world_size
        order = [order[i % self.n] for i in range(total)]
        return iter(order[self.rank :: self.world_size][self.start :])

    def __len__(self) -> int:
        return self._shard_size() - self.start
