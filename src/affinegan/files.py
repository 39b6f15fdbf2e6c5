"""The one way files are written: to a temporary sibling, flushed to disk, renamed into place.

An interruption (Ctrl-C, a crash, a full disk, a power cut) then leaves either the old file or
the new one under the real name, never a torn one. Checkpoints, options, generated videos, HTML
pages and evaluation reports all go through :func:`atomic_output`; an export's folders, whose
files belong together, through :func:`atomic_folder`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from affinegan.errors import AffineGANError


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


def _unwritable(flag: str, path: Path, err: OSError) -> AffineGANError:
    reason = err.strerror or str(err)
    return AffineGANError(f"{flag} {path}: cannot write there ({reason}); choose another folder")


def _no_file(path: Path, flag: str) -> None:
    if path.exists() and not path.is_dir():
        raise AffineGANError(f"{flag} {path}: is a file, not a folder; choose a folder")


def writable_folder(path: Path, flag: str) -> Path:
    """``path`` made (with its parents) and writable, else one line naming ``flag`` and why:
    a file in the way, a read-only disk, no permission."""
    path = Path(path)
    _no_file(path, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test.{uuid.uuid4().hex[:8]}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise _unwritable(flag, path, err) from None
    return path


def check_replaceable(path: Path, marker: str, flag: str) -> None:
    """Refuse to replace a folder that is neither empty nor a previous output of this kind
    (one holding ``marker``): it may hold the user's own files."""
    path = Path(path)
    _no_file(path, flag)
    if path.is_dir() and any(path.iterdir()) and not (path / marker).is_file():
        raise AffineGANError(
            f"{flag} {path}: the folder holds other files (no {marker} of an earlier export); "
            "choose a new or empty folder, or empty this one"
        )


@contextmanager
def atomic_folder(path: Path, marker: str, flag: str) -> Iterator[Path]:
    """Yield a temporary sibling folder of ``path`` to fill; on success it replaces ``path``
    (empty, absent or a previous output holding ``marker``: ``check_replaceable``). An
    interruption leaves the old folder or none, never a mix of old and new files."""
    path = Path(path)
    check_replaceable(path, marker, flag)
    writable_folder(path.parent, flag)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    old = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
    try:
        tmp.mkdir()
        yield tmp
        check_replaceable(path, marker, flag)  # again: the user may have written there since
        try:
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)
        except OSError as err:
            raise _unwritable(flag, path, err) from None
        _fsync_dir(path.parent)
    finally:
        if old.exists() and not path.exists():  # stopped between the two renames
            os.replace(old, path)
        for leftover in (tmp, old):
            shutil.rmtree(leftover, ignore_errors=True)
