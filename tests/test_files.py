"""The one atomic writer: old or new content under the real name, never a torn file."""

import os
import stat
from pathlib import Path

import pytest

from affinegan.files import atomic_output, atomic_text, atomic_write


def test_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.txt"
    assert atomic_text("one", path) == path  # the folder is made
    atomic_write(path, lambda tmp: tmp.write_bytes(b"two"))
    with atomic_output(path, fsync=False) as tmp:
        assert tmp.parent == path.parent and tmp.suffix == ".txt" and tmp.name.startswith(".")
        tmp.write_text("three")
    assert path.read_text() == "three"
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = atomic_text("old", tmp_path / "a.json")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_files_get_the_usual_permissions(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("POSIX modes")
    umask = os.umask(0o022)
    try:
        path = atomic_text("x", tmp_path / "opt.txt")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not a private temp-file mode
