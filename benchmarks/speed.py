"""Speed and memory of the project's path against the original's call pattern, in one run.

    python benchmarks/speed.py                       # small and paper configs, CPU
    python benchmarks/speed.py --configs small --repeats 5 --device cuda

For each config the same networks (same seed) and the same inputs go through
(a) ``core.step.train_step`` / ``generate.animate`` with fused Adam, in a process set up as
``affinegan train`` and ``generate`` set up theirs (``allocator.keep_freed_memory``), and (b)
``reference.reference_train_step`` / ``reference.reference_frames`` (12 full generator calls per
iteration, one per frame) with the original's plain ``torch.optim.Adam`` and default malloc.
``--same-runtime`` gives (b) the fused Adam and the allocator setting too, so that only the call
pattern differs.
The "iteration + data" rows add loading the sample from image files, as a training run does:
a synthetic dataset of 256 px PNG frames and masks (the size ``affinegan prepare`` writes),
read by ``ClipDataset`` in the main process, which decodes and resizes every file at every step
for (b), as the original does, and keeps decoded frames in its cache for (a) (the cache is
part of the warmed-up process, so it is not in (a)'s peak memory).
Each path runs in its own fresh process; the two are timed in alternating blocks of back-to-back
runs (about 1 s; the first run of a short block is not counted, a longer run is a block alone),
so that a slow spell of a shared machine slows both. Warm-up runs are excluded; times are medians
of at least ``--repeats`` runs, and of as many as fill 5 s per path. Peak memory is the most
tensor memory one run holds above its level at the start (parameters and optimiser state
excluded): the activations and temporaries of the path itself, counted by the allocator (CUDA's
``max_memory_allocated``; on CPU the profiler's allocation events). FLOPs come from torch's
FlopCounterMode; the machine's matmul peak from a large float32 matmul.
The "onnxruntime" task compares two inference runtimes instead of two call patterns: its
"reference" is the project's PyTorch ``animate`` and its "project" the same generator exported by
``affinegan export`` and run by onnxruntime (``OnnxGenerator.animate``, as ``generate --backend
onnxruntime`` does), on as many threads; encoding included. onnxruntime's FLOPs are PyTorch's
(the same graph) and its memory is invisible to torch's allocator counters (n/a).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from affinegan.data.synthetic import render_dataset

# tests/reference.py, the original's call pattern, lives with the tests that hold this code
# to it; a spawned worker re-runs this line too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

CONFIGS = {
    "small": dict(netG="unet_64", ngf=16, ndf=16, fineSize=64),
    "paper": dict(netG="unet_256", ngf=64, ndf=64, fineSize=256),
}
K = 5
FRAMES = 20
PATHS = ("reference", "project")
MIN_SECONDS = 5.0  # cheap configurations repeat until then: a median of many, not of 3
BLOCK_SECONDS = 1.0  # timed back to back before switching to the other path
TASKS = {
    "train": "iteration",
    "data": "iteration + data",
    "video": f"{FRAMES}-frame video",
    "onnx": f"{FRAMES}-frame video, PyTorch / onnxruntime",
}


def _cpu_peak_mb(run) -> float:
    """Peak of what the CPU allocator holds during ``run()`` above its level at the start: the
    CPU counterpart of CUDA's ``max_memory_allocated``, from the profiler's allocation events.
    An unmeasured run first, so every block the measured run frees is a known one."""
    from torch.profiler import ProfilerActivity, profile, record_function

    saved = os.dup(2)  # the profiler's C++ side chatters on stderr; the table is on stdout
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            run()
            with record_function("measured"):
                run()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    events = prof.profiler.kineto_results.events()
    mark = next(e for e in events if e.name() == "measured")
    level = start = peak = 0
    for e in sorted((e for e in events if e.name() == "[memory]"), key=lambda e: e.start_ns()):
        if e.start_ns() > mark.end_ns():
            break
        level += e.nbytes()
        if e.start_ns() < mark.start_ns():
            start = peak = level
        else:
            peak = max(peak, level)
    return (peak - start) / 2**20


def _setup(name: str, device: str, fused: bool = True):
    from affinegan.config import TrainConfig
    from affinegan.core.build import build_nets, build_optimizers

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
    return cfg, nets, build_optimizers(nets, cfg, fused), batch


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
    if cached:  # the steady state of a long run: (nearly) every frame decoded once
        for _ in range(20 * len(ds)):
            next(it)
    return it


@dataclass(frozen=True)
class Job:
    """One row of the table: a config and a task, measured for both paths."""

    name: str  # key of CONFIGS
    task: str  # key of TASKS
    device: str
    threads: int
    data: str  # the image dataset of the "data" task
    same_runtime: bool  # the reference also gets the project's runtime (fused Adam, allocator)


def _onnx_generator(G, x: torch.Tensor, threads: int, tmp_dir: str):
    """G exported as ``affinegan export`` does, loaded as ``generate --backend onnxruntime``."""
    from affinegan.export.onnx_export import export_graphs
    from affinegan.export.onnx_runtime import OnnxGenerator, open_session

    G.eval()
    paths, _, _ = export_graphs(G, x.cpu(), Path(tmp_dir))
    sessions = [open_session(paths[k], threads) for k in ("encode", "decode")]
    meta = {"expressions": ["expression"], "image_size": x.shape[-1]}
    return OnnxGenerator(meta, *sessions), x.cpu().numpy()


def _runner(job: Job, path: str, tmp_dir: str = ""):
    """The callable one measurement repeats, set up and warmed up."""
    from reference import reference_frames, reference_train_step

    from affinegan.allocator import keep_freed_memory
    from affinegan.core.step import train_step
    from affinegan.generation.generate import animate

    project_runtime = path == "project" or job.same_runtime
    if project_runtime:  # as `affinegan train` / `affinegan generate` set up their process
        keep_freed_memory()
    task, device = job.task, job.device
    cfg, nets, opts, batch = _setup(job.name, device, fused=project_runtime)
    alphas = [i / (FRAMES - 1) for i in range(FRAMES)]
    step = train_step if path == "project" else reference_train_step
    if task == "train":

        def run():
            return step(nets, opts, batch, cfg)
    elif task == "data":
        samples = _loader(cfg, job.data, path == "project", device)

        def run():
            return step(nets, opts, next(samples), cfg)
    elif task == "onnx" and path == "project":
        gen, x = _onnx_generator(nets.G, batch["A"], job.threads, tmp_dir)

        def run():
            return gen.animate(x, alphas)
    else:
        nets.G.eval()
        x = batch["A"]

        def run():
            if path == "project" or task == "onnx":
                return animate(nets.G, x[0], alphas)
            return reference_frames(nets.G, x, alphas)

    run()  # warm-up: also allocates gradients and optimiser state, which are not activations
    _sync(device)
    return run


def _worker(job: Job, path: str, conn) -> None:
    """Child process serving one path of a job: "time" a block of runs, count the "flops" of
    one, or the "memory" one run adds on top of the warmed-up process; "stop"."""
    from torch.utils.flop_counter import FlopCounterMode

    from affinegan.runtime import set_threads

    set_threads(job.threads)
    device = job.device
    onnx = job.task == "onnx" and path == "project"  # not seen by torch's counters
    with tempfile.TemporaryDirectory(prefix="affinegan-onnx-") as tmp:
        run = _runner(job, path, tmp)
    conn.send("ready")
    while (cmd := conn.recv()) != "stop":
        if cmd == "time":
            # A block of runs. After the other process ran, the first run of a short block
            # warms caches and pages up again and is not counted; a long run is a block alone.
            times: list[float] = []
            while True:
                t = time.perf_counter()
                run()
                _sync(device)
                times.append(time.perf_counter() - t)
                counted = times[1:] if times[0] < BLOCK_SECONDS else times
                if counted and sum(counted) >= BLOCK_SECONDS:
                    break
            conn.send(counted)
        elif cmd in ("flops", "memory") and onnx:
            conn.send(math.nan)
        elif cmd == "flops":
            with FlopCounterMode(display=False) as counter:
                run()
            conn.send(counter.get_total_flops() / 1e9)
        elif cmd != "memory":
            raise ValueError(f"unknown command {cmd!r}")
        elif device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            run()
            conn.send((torch.cuda.max_memory_allocated() - base) / 2**20)
        else:
            conn.send(_cpu_peak_mb(run))


@contextlib.contextmanager
def _workers(job: Job):
    """A live worker process per path."""
    ctx = mp.get_context("spawn")
    procs, conns = [], {}
    try:
        for path in PATHS:
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(job, path, there), daemon=True)
            proc.start()
            there.close()  # a worker that dies then shows up as EOFError, not a hang
            procs.append(proc)
            conns[path] = here
        for path, conn in conns.items():
            if (msg := conn.recv()) != "ready":
                raise RuntimeError(f"{path} worker: {msg!r}")
        yield conns
    finally:
        for conn in conns.values():
            with contextlib.suppress(OSError):
                conn.send("stop")
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.terminate()


def _ask(conn, cmd: str):
    conn.send(cmd)
    return conn.recv()


def measure(job: Job, repeats: int) -> dict:
    """Both paths timed in alternating blocks (which one goes first alternating too), so a slow
    spell of a shared machine hits both alike; at least ``repeats`` timed runs and ``MIN_SECONDS``
    per path."""
    out: dict[str, dict] = {p: {"times": []} for p in PATHS}

    def enough(r: dict) -> bool:
        return len(r["times"]) >= repeats and sum(r["times"]) >= MIN_SECONDS

    with _workers(job) as conns:
        rounds = 0
        while not all(enough(r) for r in out.values()):
            for path in PATHS if rounds % 2 == 0 else PATHS[::-1]:
                out[path]["times"] += _ask(conns[path], "time")
            rounds += 1
        for path in PATHS:
            out[path]["gflop"] = _ask(conns[path], "flops")
            out[path]["median_s"] = statistics.median(out[path]["times"])
            out[path]["peak_mb"] = _ask(conns[path], "memory")
    return out


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
    ap.add_argument("--repeats", type=int, default=3, help=f"at least; and {MIN_SECONDS:g} s")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--tasks", default=",".join(TASKS), help=f"any of {','.join(TASKS)}")
    ap.add_argument(
        "--same-runtime",
        action="store_true",
        help="give the reference the project's runtime too (fused Adam, allocator setting): "
        "then only the call pattern differs",
    )
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    tasks = a.tasks.split(",")
    if unknown := sorted(set(tasks) - set(TASKS)):
        ap.error(f"--tasks: unknown {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    peak = matmul_peak_gflops(a.device, a.threads)
    runtime = "same runtime for both" if a.same_runtime else "reference: plain Adam, default malloc"
    print(f"machine: {machine(a.device, a.threads)}; matmul peak {peak:.0f} GFLOP/s; {runtime}\n")
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="affinegan-speed-") as tmp:
        data = ""
        if "data" in tasks:
            data = str(render_dataset(Path(tmp), "smile", clips=8, test_clips=0, size=256))
        for name in a.configs.split(","):
            for task in tasks:
                job = Job(name, task, a.device, a.threads, data, a.same_runtime)
                r = measure(job, a.repeats)
                results[f"{name}/{task}"] = r
                ref, ours = r["reference"], r["project"]
                if math.isnan(ours["gflop"]):  # onnxruntime: the same graph as PyTorch's
                    ours["gflop"] = ref["gflop"]
                rate = ours["gflop"] / ours["median_s"]
                mem = ours["peak_mb"] / max(ref["peak_mb"], 1e-9)
                mem_text = "n/a" if math.isnan(mem) else f"{ours['peak_mb']:.0f} ({mem:.2f}x)"
                rows.append(
                    f"| {name} | {TASKS[task]} | {ref['median_s']:.3f} | {ours['median_s']:.3f} "
                    f"| **{ref['median_s'] / ours['median_s']:.2f}x** "
                    f"| {ref['gflop']:.1f} / {ours['gflop']:.1f} | {rate:.0f} ({rate / peak:.0%}) "
                    f"| {ref['peak_mb']:.0f} / {mem_text} |"
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
                    "same_runtime": a.same_runtime,
                    "matmul_gflops": peak,
                    "results": results,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
