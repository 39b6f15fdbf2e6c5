"""Keep freed CPU memory in the process, so that each training step reuses the last one's pages.

PyTorch's CPU tensors come from plain ``malloc``. glibc serves large blocks (most activations at
256 px) with fresh ``mmap`` pages and unmaps them on free, so every step faults in and zero-fills
its whole activation memory again: about a gigabyte and 260k page faults per paper-config
iteration, some 20% of its time on the machine of docs/performance.md. ``affinegan train`` and
``affinegan generate`` own their process and switch this off; library calls leave it alone.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Serve every block from the heap and never give freed heap back to the OS (glibc only).

    The resident size then stays at the peak of a step instead of falling between steps.
    Returns whether it took effect: False where malloc is not glibc's (macOS, Windows, musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
