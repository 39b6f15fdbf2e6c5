"""How a command sets up its process: device, CPU threads, allocator, process group.

Training (``training/train.py``) and inference (``generation``, ``evaluation``, ``serving``) both
start here, so none of them imports another's loop to pick a device. The helpers know no model
and no config: they take the original's ``--gpu_ids`` string and plain numbers.

- :func:`resolve_device`: ``--gpu_ids`` -> ``torch.device`` (CPU when asked or when no GPU).
- :func:`set_threads`: torch's intra-op CPU threads.
- :func:`thread_policy`: the thread count every command that trains or generates runs with:
  ``--torch_threads`` if given, else ``OMP_NUM_THREADS`` if set, else the cores idle at start.
- :func:`keep_freed_memory`: glibc keeps freed memory in the process (see ``allocator.py``);
  only commands that own their process call it, never library code.
- :func:`process`: device + torchrun's process group (see ``distributed.py``), one GPU per
  rank, left cleanly on exit; without torchrun it is one process and no group.

Importing this module imports no torch (each helper does, when called), so a torch-free command
(``generate --backend onnxruntime``) sets up its process here too.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from affinegan.allocator import keep_freed_memory
from affinegan.errors import AffineGANError

if TYPE_CHECKING:
    import torch

    from affinegan.training.distributed import World

__all__ = [
    "Runtime",
    "keep_freed_memory",
    "process",
    "resolve_device",
    "set_threads",
    "thread_policy",
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


PROC_STAT = "/proc/stat"
IDLE_SAMPLE_S = 0.2  # how long the idle cores are measured at start
IDLE_SLACK = 0.25  # a core that is idle for 75% of the sample counts as idle


def cpu_times(stat: str) -> tuple[int, int, int]:
    """(idle jiffies, all jiffies, CPU count) from the text of ``/proc/stat``: the summed ``cpu``
    line (idle + iowait against user..steal; guest time is already inside user) and the number
    of ``cpuN`` lines."""
    total = idle = cpus = 0
    for line in stat.splitlines():
        name, *values = line.split()
        if name == "cpu":
            ticks = [int(v) for v in values[:8]]
            total, idle = sum(ticks), sum(ticks[3:5])
        elif name.startswith("cpu") and name[3:].isdigit():
            cpus += 1
    if not total or not cpus:
        raise ValueError("no cpu lines in /proc/stat")
    return idle, total, cpus


def idle_cores(before: str, after: str) -> float:
    """How many cores were idle between two readings of ``/proc/stat``, on average."""
    idle0, total0, cpus = cpu_times(before)
    idle1, total1, _ = cpu_times(after)
    if total1 <= total0:
        return float(cpus)  # no tick in between: nothing ran
    return cpus * (idle1 - idle0) / (total1 - total0)


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def measure_idle_cores(
    seconds: float = IDLE_SAMPLE_S,
    read: Callable[[], str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> float | None:
    """Idle cores over ``seconds`` from ``/proc/stat``; None where it cannot be read."""
    if read is None:

        def read() -> str:
            with open(PROC_STAT, encoding="ascii") as f:
                return f.read()

    try:
        before = read()
        sleep(seconds)
        return idle_cores(before, read())
    except (OSError, ValueError, IndexError):
        return None


def choose_threads(
    requested: int, idle: float | None, usable: int, env: str | None = None
) -> tuple[int, str]:
    """The torch thread count and why: ``requested`` (``--torch_threads``) if positive, else
    ``OMP_NUM_THREADS`` (``env``) if it is a positive count, else the idle cores rounded down
    (a core idle for at least 75% of the sample counts), at least 1 and at most ``usable``;
    0 when nothing could be measured (torch keeps its own choice)."""
    if requested < 0:
        raise AffineGANError(f"--torch_threads {requested}: expected 0 (automatic) or a count")
    if requested:
        return requested, "--torch_threads"
    if env is not None and env.strip().isdigit() and int(env) > 0:
        return int(env), "OMP_NUM_THREADS"
    if idle is None:
        return 0, "torch's default (idle cores unknown)"
    threads = max(1, min(usable, math.floor(idle + IDLE_SLACK)))
    return threads, f"{idle:.1f} of {usable} cores idle at start"


def thread_policy(requested: int = 0) -> int:
    """Set torch's intra-op threads for a command that trains or generates; returns the count.

    Torch's default, one thread per core, collapses when another CPU-bound process holds a core
    (OpenMP threads wait for each other: 65 -> 270 ms per demo step on 2 cores, against 91 -> 100
    on one thread; docs/performance.md). So by default a command takes only the cores idle when
    it starts, measured from ``/proc/stat`` over 0.2 s. Load that arrives later is not seen;
    ``--torch_threads N`` (or ``OMP_NUM_THREADS``) fixes the count instead.
    """
    env = os.environ.get("OMP_NUM_THREADS")
    explicit = requested > 0 or (env is not None and env.strip().isdigit() and int(env) > 0)
    idle = None if explicit else measure_idle_cores()
    threads, why = choose_threads(requested, idle, usable_cores(), env)
    used = set_threads(threads)
    log.info("torch threads: %d (%s)", used, why)
    return used


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

    from affinegan.training import distributed as dist

    device = resolve_device(gpu_ids)
    world = dist.init(device.type)
    try:
        if world.active and device.type == "cuda":
            device = torch.device(f"cuda:{world.local_rank}")
            torch.cuda.set_device(device)
        yield Runtime(device, world)
    finally:
        dist.shutdown(world)
