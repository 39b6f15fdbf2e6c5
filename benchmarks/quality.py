"""Quality benchmark with ground truth: synthetic expressions -> train tiny on CPU -> evaluate.

    nice -n 19 python benchmarks/quality.py                      # 4 expressions, 6000 steps
    nice -n 19 python benchmarks/quality.py --expressions smile --steps 2000 --jobs 1

For each expression a fixed synthetic dataset is rendered (24 training clips, 6 test clips of
held-out identities, 64 px, 8-30 frames, seed 0; ``render_dataset`` gives train and test
disjoint identities), a model is trained for a fixed number of steps at 64 px (unet_64, mouth
masks on, the original's losses and defaults otherwise) in a process of its own, and
``affinegan.evaluate`` scores it on the test clips. The table reports the figures the targets
are stated in, and the CPU time of each training (single-threaded by default so several
expressions can train side by side on a small machine).

Targets checked: Spearman (inferred alpha vs true intensity, per-clip mean) >= 0.9, PSNR with
oracle alphas >= 25 dB, ACD-i of generated frames <= 1.1 x the ground truth's ACD-i.

``--set lambda_order=10`` trains with the frame-order hinge on the inferred alphas (a
TrainConfig flag, off by default); ``--alpha_d_init pytorch`` (D_alpha with PyTorch's
default Linear init) is a prototype patched in from outside. docs/results.md has the
measured effect of both.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

CLIPS, TEST_CLIPS, SIZE = 24, 6, 64
TARGETS = {"spearman": 0.9, "oracle_psnr": 25.0, "acd_i_ratio": 1.1}


def _overrides(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs typed by the TrainConfig field they name."""
    from affinegan.config import TrainConfig

    types = {f.name: f.type for f in fields(TrainConfig)}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in types:
            raise SystemExit(f"--set {pair}: TrainConfig has no field {key!r}")
        kind = str(types[key])
        if kind == "bool":
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = {"int": int, "float": float}.get(kind, str)(value)
    return out


def _reinit_alpha_d(nets: Any) -> Any:
    """Prototype of ``--alpha_d_init pytorch``: D_alpha back to PyTorch's default init."""
    for m in nets.D_alpha.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return nets


def train_and_evaluate(expr: str, a: dict[str, Any], q: Any) -> None:
    """Child process: render, train (timed in CPU seconds), evaluate; report via ``q``."""
    import torch

    from affinegan import train as train_mod
    from affinegan.config import TrainConfig
    from affinegan.data.synthetic import render_dataset
    from affinegan.evaluate import EvalConfig, evaluate

    torch.set_num_threads(a["threads"])
    out = Path(a["out"])
    data = out / "data" / expr
    if not (data / "test" / "meta").is_dir():
        render_dataset(data, expr, CLIPS, TEST_CLIPS, SIZE, a["seed"])
    name = f"{expr}{a['tag']}"
    cfg = TrainConfig(
        dataroot=str(data),
        name=name,
        checkpoints_dir=str(out / "checkpoints"),
        gpu_ids="-1",
        netG="unet_64",
        ngf=a["ngf"],
        ndf=a["ngf"],
        loadSize=SIZE + SIZE // 8,
        fineSize=SIZE,
        niter=10**6,  # the step budget ends training; the lr stays constant as in early epochs
        niter_decay=0,
        max_steps=a["steps"],
        num_threads=0,
        print_freq=100,
        display_freq=10**9,
        save_latest_freq=1000,
        save_epoch_freq=10**9,
        no_html=True,
        seed=a["seed"],
        **a["overrides"],
    )
    cpu_s = wall_s = None
    if not a["eval_only"]:
        if a["alpha_d_init"] == "pytorch":
            build = train_mod.build_nets
            train_mod.build_nets = lambda c: _reinit_alpha_d(build(c))
        t0, c0 = time.perf_counter(), time.process_time()
        train_mod.train(cfg)
        wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    ev = EvalConfig(
        dataroot=str(data),
        name=name,
        checkpoints_dir=cfg.checkpoints_dir,
        results_dir=str(out / "results"),
        gpu_ids="-1",
        regenerate=True,
        out=str(out / "eval" / f"{name}.json"),
    )
    result = evaluate(ev)
    q.put(
        {
            "expression": expr,
            "name": name,
            "train_cpu_s": cpu_s,
            "train_wall_s": wall_s,
            "summary": result["summary"],
        }
    )


def targets(s: dict[str, Any]) -> dict[str, bool | None]:
    """Which of the issue's targets a summary meets (None: not measurable)."""
    ratio = None
    if s.get("acd_i") is not None and s.get("gt_acd_i"):
        ratio = s["acd_i"] / s["gt_acd_i"]
    return {
        "spearman": None if s.get("spearman") is None else s["spearman"] >= TARGETS["spearman"],
        "oracle_psnr": s["oracle_psnr"] >= TARGETS["oracle_psnr"],
        "acd_i": None if ratio is None else ratio <= TARGETS["acd_i_ratio"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    def f(v: Any, d: int) -> str:
        return "n/a" if v is None else f"{v:.{d}f}"

    head = (
        "| run | steps | train CPU min | SSIM | PSNR | oracle SSIM | oracle PSNR "
        "| copy-input PSNR | alpha-0 recon PSNR "
        "| Spearman (pooled) | pixel-change Spearman | monotonic | peak alpha "
        "| ACD-i / truth ACD-i | ACD-m | ACD-c / truth | no face gen/truth | targets S/P/A |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        s, t = r["summary"], targets(r["summary"])
        cpu = None if r["train_cpu_s"] is None else r["train_cpu_s"] / 60
        met = "/".join({True: "yes", False: "no", None: "n/a"}[t[k]] for k in t)
        lines.append(
            f"| {r['name']} | {r['steps']} | {f(cpu, 1)} | {f(s['ssim'], 3)} | {f(s['psnr'], 2)} "
            f"| {f(s['oracle_ssim'], 3)} | {f(s['oracle_psnr'], 2)} "
            f"| {f(s.get('copy_psnr'), 2)} | {f(s.get('recon_psnr'), 2)} "
            f"| {f(s['spearman'], 3)} ({f(s['spearman_pooled'], 3)}) "
            f"| {f(s['spearman_pixel_baseline'], 3)} | {f(s['monotonic_fraction'], 3)} "
            f"| {f(s['alpha_peak'], 2)} | {f(s.get('acd_i'), 3)} / {f(s.get('gt_acd_i'), 3)} "
            f"| {f(s.get('acd_m'), 3)} | {f(s.get('acd_c'), 3)} / {f(s.get('gt_acd_c'), 3)} "
            f"| {s.get('faces_missing_generated')}/{s.get('faces_missing_gt')} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench_quality", help="data, checkpoints and reports")
    ap.add_argument("--expressions", default="smile,surprise,anger,blink")
    ap.add_argument("--steps", type=int, default=6000, help="training steps per expression")
    ap.add_argument("--ngf", type=int, default=16, help="generator and discriminator width")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training")
    ap.add_argument("--jobs", type=int, default=2, help="expressions trained side by side")
    ap.add_argument("--set", nargs="*", default=[], help="TrainConfig overrides KEY=VALUE")
    ap.add_argument("--alpha_d_init", choices=("normal", "pytorch"), default="normal")
    ap.add_argument("--tag", default="", help="suffix of the run names (for variants)")
    ap.add_argument("--eval_only", action="store_true", help="evaluate existing runs")
    a = ap.parse_args()
    opts = {**vars(a), "overrides": _overrides(a.set)}
    exprs = [e for e in a.expressions.split(",") if e]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    rows: list[dict[str, Any]] = []
    pending, procs = list(exprs), {}
    while pending or procs:
        while pending and len(procs) < a.jobs:
            expr = pending.pop(0)
            procs[expr] = ctx.Process(target=train_and_evaluate, args=(expr, opts, q))
            procs[expr].start()
        try:
            r = q.get(timeout=10)
        except queue.Empty:
            for expr, p in procs.items():
                if p.exitcode not in (None, 0):
                    raise SystemExit(f"{expr}: benchmark process failed ({p.exitcode})") from None
            continue
        procs.pop(r["expression"]).join()
        r["steps"] = a.steps
        rows.append(r)
        print(table([r]).splitlines()[-1], flush=True)
    rows.sort(key=lambda r: exprs.index(r["expression"]))
    out = Path(a.out)
    saved = out / f"quality{a.tag}.json"
    if a.eval_only and saved.is_file():  # keep the training times of the run being re-scored
        before = {r["name"]: r for r in json.loads(saved.read_text())}
        for r in rows:
            for key in ("train_cpu_s", "train_wall_s"):
                r[key] = before.get(r["name"], {}).get(key)
    flags = [
        f"--{k}" if v is True else f"--{k} {v}"
        for k, v in vars(a).items()
        if v not in (False, [], "") and k != "set"
    ]
    cmd = " ".join(["python benchmarks/quality.py", *flags, *(["--set", *a.set] if a.set else [])])
    text = f"{cmd}\n\n{table(rows)}\n"
    print("\n" + text)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"quality{a.tag}.md").write_text(text)
    saved.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
