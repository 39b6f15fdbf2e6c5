"""How a command sets up its process: device, CPU threads, allocator, process group.

Training (``train.py``) and inference (``generate.py``, ``evaluate.py``, ``serve.py``) both
start here, so none of them imports another's loop to pick a device. The helpers know no model
and no config: they take the original's ``--gpu_ids`` string and plain numbers.

- :func:`resolve_device`: ``--gpu_ids`` -> ``torch.device`` (CPU when asked or when no GPU).
- :func:`set_threads`: torch's intra-op CPU threads.
- :func:`keep_freed_memory`: glibc keeps freed memory in the process (see ``allocator.py``);
  only commands that own their process call it, never library code.
- :func:`process`: device + torchrun's process group (see ``distributed.py``), one GPU per
  rank, left cleanly on exit; without torchrun it is one process and no group.

Importing this module imports no torch (each helper does, when called), so a torch-free command
(``generate --backend onnxruntime``) sets up its process here too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .allocator import keep_freed_memory
from .errors import AffineGANError

if TYPE_CHECKING:
    import torch

    from .distributed import World

__all__ = [
    "Runtime",
    "keep_freed_memory",
    "process",
    "resolve_device",
    "set_threads",
]

log = logging.getLogger(__name__)


def resolve_device(gpu_ids: str) -> torch.device:
    """The original's ``--gpu_ids``: -1 is the CPU; a GPU id falls back to CPU if none exists."""
    import torch

    try:
        ids = [int(i) for i in str(gpu_ids).split(",") if i.strip() != ""]
    except ValueError:
        raise AffineGANError(f"--gpu_ids {gpu_ids!r}: expected e.g. 0, 0,1 or -1") from None
    ids = [i for i in ids if i >= 0]
    if not ids:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        log.info("no CUDA device found: running on the CPU (--gpu_ids -1 to say so)")
        return torch.device("cpu")
    if ids[0] >= torch.cuda.device_count():
        raise AffineGANError(
            f"--gpu_ids {gpu_ids}: this machine has {torch.cuda.device_count()} GPU(s), "
            f"numbered from 0"
        )
    if len(ids) > 1:
        log.warning(
            "note: one process uses one GPU (cuda:%d); for several GPUs use torchrun", ids[0]
        )
    return torch.device(f"cuda:{ids[0]}")


def set_threads(threads: int = 0) -> int:
    """Use ``threads`` intra-op CPU threads (0 keeps torch's choice); returns the count in use."""
    import torch

    if threads < 0:
        raise AffineGANError(f"threads {threads}: expected 0 (automatic) or a positive count")
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


@dataclass(frozen=True)
class Runtime:
    """Where this process computes and which rank of how many it is."""

    device: torch.device
    world: World


@contextmanager
def process(gpu_ids: str) -> Iterator[Runtime]:
    """The device ``--gpu_ids`` names, and torchrun's process group if this is one of its ranks.

    Under torchrun on GPUs each rank takes the GPU of its local rank; the group is left on exit,
    also after an error, so no rank hangs in a collective that will never come.
    """
    import torch

    from . import distributed as dist

    device = resolve_device(gpu_ids)
    world = dist.init(device.type)
    try:
        if world.active and device.type == "cuda":
            device = torch.device(f"cuda:{world.local_rank}")
            torch.cuda.set_device(device)
        yield Runtime(device, world)
    finally:
        dist.shutdown(world)
