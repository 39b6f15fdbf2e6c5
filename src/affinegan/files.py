"""The one way files are written: to a temporary sibling, flushed to disk, renamed into place.

An interruption (Ctrl-C, a crash, a full disk, a power cut) then leaves either the old file or
the new one under the real name, never a torn one. Checkpoints, options, generated videos, HTML
pages and evaluation reports all go through :func:`atomic_output`.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(path: Path, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; on success it replaces ``path``.

    The temporary name keeps the suffix, so tools that pick a format by extension (ffmpeg)
    still work, and the writer creates it, so the final file gets the usual permissions. With
    ``fsync`` (the default) the data, then the rename, reach the disk before this returns;
    ``fsync=False`` is for bulk output that can be remade (the synthetic renderer's frames).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if fsync:
            _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and put the result at ``path`` atomically; returns ``path``."""
    with atomic_output(path) as tmp:
        write(tmp)
    return Path(path)


def atomic_text(text: str, path: Path) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; Windows cannot open a folder, and needs not)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
