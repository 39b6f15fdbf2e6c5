"""Data-parallel training under torchrun (NCCL on GPUs, gloo on CPU); one process otherwise.

Every rank holds the same networks and steps its optimisers with gradients averaged over all
ranks: what DistributedDataParallel does, made explicit because one AffineGAN iteration runs
four optimisers and several backward passes through the generator's encode/decode methods,
which DDP's forward-hook bookkeeping does not follow. Without torchrun's environment every
function here is a no-op, so the same loop serves one process.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def init(device_type: str) -> World:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK), if any."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        # torch 2.13: when torch._dynamo (imported by the first optimizer) is first imported
        # after the group exists, destroy_process_group() leaves gloo's threads running and the
        # process can abort at exit ("terminate called without an active exception").
        with contextlib.suppress(ImportError, RuntimeError):  # old torch on new Python
            importlib.import_module("torch._dynamo")
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_modules(world: World, modules: list[nn.Module]) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    if world.active:
        for m in modules:
            for t in list(m.parameters()) + list(m.buffers()):
                dist.broadcast(t.data, src=0)


def average_gradients(world: World, module: nn.Module) -> None:
    """Average a module's gradients over ranks in one flat all-reduce."""
    if not world.active:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def any_rank(world: World, flag: bool, device: torch.device) -> bool:
    """True on every rank when any rank says so (a Ctrl-C seen by one rank stops all)."""
    if not world.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(world: World, obj: object) -> list[object]:
    """Every rank's ``obj`` (e.g. RNG states), in rank order."""
    if not world.active:
        return [obj]
    out: list[object] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def barrier(world: World) -> None:
    if world.active:
        dist.barrier()


def checksum(module: nn.Module) -> float:
    """A cheap fingerprint of the weights, to confirm all ranks hold the same model."""
    return float(sum(p.detach().double().sum() for p in module.parameters()))
