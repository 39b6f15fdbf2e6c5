"""Training speed on an idle and on a busy machine, with OpenMP's two ways of waiting.

    python benchmarks/busy.py                 # demo config, 40 steps per cell
    python benchmarks/busy.py --steps 100 --hogs 1
    python benchmarks/busy.py --steps 30 --policies "" --threads 0,1,auto   # the thread policy

Each cell runs ``core.step.train_step`` of the demo's configuration (unet_64, ngf 16, 64 px, K 5,
the expressive preset) in a fresh process whose ``OMP_WAIT_POLICY`` and torch thread count are
set before torch loads, and reports wall and CPU milliseconds per step (median of three blocks,
after warm-up). "busy" starts ``--hogs`` CPU-bound processes (a Python loop each) for the cell's
duration, as another user's job would. ``ACTIVE`` is OpenMP's spinning wait, ``PASSIVE`` its
sleeping one, an empty policy libgomp's default; the thread count ``0`` is torch's default (one
per core), ``auto`` the policy every command runs by default (``runtime.thread_policy``: the
cores idle when the cell starts, the hogs already running). docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CELL = r"""
import json, sys, time
import torch
from affinegan.config import TrainConfig, apply_preset
from affinegan.core.build import build_nets, build_optimizers
from affinegan.core.step import train_step

threads, steps = sys.argv[1], int(sys.argv[2])
if threads == "auto":
    from affinegan.runtime import thread_policy
    thread_policy(0)
elif int(threads):
    torch.set_num_threads(int(threads))
cfg = apply_preset(TrainConfig(dataroot="x", netG="unet_64", ngf=16, ndf=16, fineSize=64,
                               loadSize=72, train_imagenum=5, preset="expressive"))
torch.manual_seed(0)
nets = build_nets(cfg)
opts = build_optimizers(nets, cfg)
g = torch.Generator().manual_seed(0)
batch = {"A": torch.rand(1, 3, 64, 64, generator=g) * 2 - 1,
         "B": torch.rand(1, 5, 3, 64, 64, generator=g) * 2 - 1,
         "mask_A": torch.ones(1, 3, 64, 64), "mask_B": torch.ones(1, 5, 3, 64, 64),
         "B_index": torch.arange(1, 6)[None]}
for _ in range(5):
    train_step(nets, opts, batch, cfg)
blocks = []
for _ in range(3):
    w, c = time.perf_counter(), time.process_time()
    for _ in range(steps):
        train_step(nets, opts, batch, cfg)
    blocks.append(((time.perf_counter() - w) / steps, (time.process_time() - c) / steps))
blocks.sort()
print(json.dumps({"threads": torch.get_num_threads(), "wall_ms": 1e3 * blocks[1][0],
                  "cpu_ms": 1e3 * blocks[1][1]}))
"""

HOG = "while True: pass"


def run_cell(policy: str, threads: str, steps: int, hogs: int) -> dict:
    """One measurement in a fresh process, with ``hogs`` CPU-bound processes beside it."""
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    env.pop("OMP_NUM_THREADS", None)
    busy = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
    try:
        time.sleep(0.5 if hogs else 0)
        out = subprocess.run(
            [sys.executable, "-c", CELL, threads, str(steps)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=3600,
        )
    finally:
        for p in busy:
            p.kill()
            p.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="steps per timed block")
    ap.add_argument("--hogs", type=int, default=1, help="CPU-bound processes when busy")
    ap.add_argument("--policies", default="ACTIVE,PASSIVE")
    ap.add_argument(
        "--threads", default="0,1", help="torch threads (0: one per core; auto: the policy)"
    )
    a = ap.parse_args()
    print(f"cores {os.cpu_count()}, {a.steps} steps per block, busy = {a.hogs} hog(s)")
    print("| load | OMP_WAIT_POLICY | threads | wall ms/step | CPU ms/step |")
    print("|---|---|---|---|---|")
    for load, hogs in (("idle", 0), ("busy", a.hogs)):
        for policy in a.policies.split(","):
            for threads in a.threads.split(","):
                r = run_cell(policy, threads, a.steps, hogs)
                label = f"auto: {r['threads']}" if threads == "auto" else r["threads"]
                print(
                    f"| {load} | {policy or 'unset'} | {label} | {r['wall_ms']:.1f} "
                    f"| {r['cpu_ms']:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
