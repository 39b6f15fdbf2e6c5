"""Shared fixtures, and one setting for the whole test session."""

import logging
import os
from pathlib import Path

import pytest

# One intra-op thread unless the caller chose (before torch is imported, so subprocesses inherit
# it too): the tests' tiny models gain nothing from a second thread, and on a busy machine
# spinning OpenMP threads made single tests 4-50x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``shared`` folder beside the repo (sample data, upstream fixtures); skip when absent."""
    path = Path(__file__).resolve().parents[2] / "shared"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """``affinegan``'s CLI points the root logger at the ``sys.stderr`` of its call, which under
    pytest is a capture stream closed after the test; a server thread of a later test logging
    through that handler would print "--- Logging error ---". Each test leaves the root logger's
    handlers as it found them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
