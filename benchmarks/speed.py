"""Speed and memory of the project's path against the original's call pattern, in one run.

    python benchmarks/speed.py                       # small and paper configs, CPU
    python benchmarks/speed.py --configs small --repeats 5 --device cuda

For each config the same networks (same seed) and the same inputs go through
(a) ``model.train_step`` / ``generate.animate`` and (b) ``reference.reference_train_step`` /
``reference.reference_frames`` (12 full generator calls per iteration, one per frame).
The "iteration + data" rows add loading the sample from image files, as a training run does:
a synthetic dataset of 256 px PNG frames and masks (the size ``affinegan prepare`` writes),
read by ``ClipDataset`` in the main process, which decodes and resizes every file at every step
for (b), as the original does, and keeps decoded frames in its cache for (a).
Each measurement runs in a fresh process. Warm-up runs are excluded; times are medians. Peak
memory is what one run adds on top of the warmed-up process (parameters, gradients and
optimiser state excluded): the activations and temporaries of the path itself. FLOPs come
from torch's FlopCounterMode; the machine's matmul peak from a large float32 matmul.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from affinegan.data.synthetic import render_dataset

CONFIGS = {
    "small": dict(netG="unet_64", ngf=16, ndf=16, fineSize=64),
    "paper": dict(netG="unet_256", ngf=64, ndf=64, fineSize=256),
}
K = 5
FRAMES = 20
TASKS = {"train": "iteration", "data": "iteration + data", "video": f"{FRAMES}-frame video"}
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> float:
    """Reset the process's peak RSS (Linux clear_refs) and return the current RSS in MB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mb("VmRSS")


def _setup(name: str, device: str):
    from affinegan.config import TrainConfig
    from affinegan.model import build_nets, build_optimizers

    cfg = TrainConfig(
        dataroot="-", loadSize=CONFIGS[name]["fineSize"], train_imagenum=K, **CONFIGS[name]
    )
    torch.manual_seed(0)
    nets = build_nets(cfg)
    for _, net in nets.items():
        net.to(device).train()
    s = cfg.fineSize
    g = torch.Generator().manual_seed(1)
    batch = {
        "A": torch.rand(1, 3, s, s, generator=g) * 2 - 1,
        "B": torch.rand(1, K, 3, s, s, generator=g) * 2 - 1,
        "mask_A": (torch.rand(1, 3, s, s, generator=g) > 0.8).float(),
        "mask_B": (torch.rand(1, K, 3, s, s, generator=g) > 0.8).float(),
    }
    batch = {k: v.to(device) for k, v in batch.items()}
    return cfg, nets, build_optimizers(nets, cfg), batch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _loader(cfg, data: str, cached: bool, device: str):
    """Samples read from ``data`` clip after clip, epoch after epoch; batches of one."""
    from torch.utils.data import default_collate

    from affinegan.data.dataset import ClipDataset, scan_clips

    clips = scan_clips(Path(data), "train", use_patch=True, min_frames=2)
    ds = ClipDataset(
        clips, cfg.loadSize, cfg.fineSize, K, use_patch=True, cache_mb=512 if cached else 0
    )

    def samples():
        for epoch in itertools.count(1):
            ds.set_epoch(epoch)
            for i in range(len(ds)):
                batch = default_collate([ds[i]])
                yield {k: v.to(device) for k, v in batch.items() if torch.is_tensor(v)}

    it = samples()
    if cached:  # the steady state of a long run: every frame decoded once
        for _ in range(20 * len(ds)):
            next(it)
    return it


def _measure(
    name: str, path: str, task: str, device: str, repeats: int, threads: int, data: str, q
) -> None:
    """Child process: time one (config, path, task) and count its FLOPs, or (repeats == 0)
    measure the memory one run adds on top of the warmed-up process."""
    from torch.utils.flop_counter import FlopCounterMode

    from affinegan.generate import animate
    from affinegan.model import train_step
    from affinegan.reference import reference_frames, reference_train_step

    torch.set_num_threads(threads)
    cfg, nets, opts, batch = _setup(name, device)
    alphas = [i / (FRAMES - 1) for i in range(FRAMES)]
    if task == "train":
        step = train_step if path == "project" else reference_train_step

        def run():
            return step(nets, opts, batch, cfg)
    elif task == "data":
        step = train_step if path == "project" else reference_train_step
        samples = _loader(cfg, data, path == "project", device)

        def run():
            return step(nets, opts, next(samples), cfg)
    else:
        nets.G.eval()
        x = batch["A"]

        def run():
            if path == "project":
                return animate(nets.G, x[0], alphas)
            return reference_frames(nets.G, x, alphas)

    run()  # warm-up: also allocates gradients and optimiser state, which are not activations
    _sync(device)
    if repeats == 0:
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            run()
            q.put({"peak_mb": (torch.cuda.max_memory_allocated() - base) / 2**20})
        else:
            base = _reset_peak()
            run()
            q.put({"peak_mb": _status_mb("VmHWM") - base})
        return
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - t)
    with FlopCounterMode(display=False) as counter:
        run()
    q.put(
        {
            "median_s": statistics.median(times),
            "times": times,
            "gflop": counter.get_total_flops() / 1e9,
        }
    )


def _child(
    name: str, path: str, task: str, device: str, repeats: int, threads: int, data: str
) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    args = (name, path, task, device, repeats, threads, data, q)
    p = ctx.Process(target=_measure, args=args)
    p.start()
    result = q.get()
    p.join()
    return result


def measure(
    name: str, path: str, task: str, device: str, repeats: int, threads: int, data: str
) -> dict:
    """Timing and FLOPs in one fresh process; memory in another whose large allocations go
    straight to and from the OS (glibc mmap), so its resident-set peak is the live peak."""
    result = _child(name, path, task, device, repeats, threads, data)
    saved = {k: os.environ.get(k) for k in MALLOC_ENV}
    os.environ.update(MALLOC_ENV)
    try:
        result.update(_child(name, path, task, device, 0, threads, data))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return result


def matmul_peak_gflops(device: str, threads: int) -> float:
    torch.set_num_threads(threads)
    n = 4096 if device.startswith("cuda") else 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def machine(device: str, threads: int) -> str:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if device.startswith("cuda") else ""
    return f"{cpu}, {threads} threads, torch {torch.__version__}, device {device}{gpu}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="small,paper")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--tasks", default=",".join(TASKS), help=f"any of {','.join(TASKS)}")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    peak = matmul_peak_gflops(a.device, a.threads)
    print(f"machine: {machine(a.device, a.threads)}; matmul peak {peak:.0f} GFLOP/s\n")
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="affinegan-speed-") as tmp:
        data = str(render_dataset(Path(tmp), "smile", clips=8, test_clips=0, size=256))
        for name in a.configs.split(","):
            for task in a.tasks.split(","):
                r = {
                    p: measure(name, p, task, a.device, a.repeats, a.threads, data)
                    for p in ("reference", "project")
                }
                results[f"{name}/{task}"] = r
                ref, ours = r["reference"], r["project"]
                rate = ours["gflop"] / ours["median_s"]
                mem = ours["peak_mb"] / max(ref["peak_mb"], 1e-9)
                rows.append(
                    f"| {name} | {TASKS[task]} | {ref['median_s']:.3f} | {ours['median_s']:.3f} "
                    f"| **{ref['median_s'] / ours['median_s']:.2f}x** "
                    f"| {ref['gflop']:.1f} / {ours['gflop']:.1f} | {rate:.0f} ({rate / peak:.0%}) "
                    f"| {ref['peak_mb']:.0f} / {ours['peak_mb']:.0f} ({mem:.2f}x) |"
                )
                print(rows[-1], flush=True)
    print(
        "\n| config | task | reference s | project s | speed-up | GFLOP ref / project "
        "| project GFLOP/s (of peak) | peak MB ref / project |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {
                    "machine": machine(a.device, a.threads),
                    "matmul_gflops": peak,
                    "results": results,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
