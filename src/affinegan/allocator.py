"""Keep freed CPU memory in the process, so that each training step reuses the last one's pages.

PyTorch's CPU tensors come from plain ``malloc``. glibc serves large blocks (most activations at
256 px) with fresh ``mmap`` pages and unmaps them on free, so every step faults in and zero-fills
its activation memory again: about a gigabyte, 240k-370k page faults, per paper-config
iteration, some 20% of its time on the machine of docs/performance.md. ``affinegan train``,
``generate`` and ``demo`` own their process and tell glibc to keep freed memory instead;
library calls leave the process alone. ``AFFINEGAN_KEEP_FREED_MEMORY=0`` opts out.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
OPT_OUT = "AFFINEGAN_KEEP_FREED_MEMORY"


def keep_freed_memory() -> bool:
    """Serve blocks from the heap and never give freed heap back to the OS (glibc only).

    The resident size then stays at the peak of a step instead of falling between steps. Large
    blocks that other threads allocate still come from ``mmap``. Returns whether it took effect:
    False without glibc (macOS, Windows, musl) or with ``AFFINEGAN_KEEP_FREED_MEMORY=0``; with
    another malloc preloaded (jemalloc, tcmalloc) the call has no effect.
    """
    if os.environ.get(OPT_OUT, "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False  # not glibc (musl has mallopt but no such symbol)
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
