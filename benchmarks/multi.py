"""One model for four expressions against four single-expression models, on quality.py's data.

    nice -n 19 python benchmarks/multi.py --out bench_quality --preset expressive --steps 24000

Trains one multi-expression model on the four synthetic expressions of ``benchmarks/quality.py``
(the same renders: 24 training clips and 6 held-out test clips per expression, 64 px, seed 0,
side by side as ``<out>/data/<expression>``), for as many steps as the four single models
together (``quality.py --steps 6000`` each), single-threaded; then evaluates it on each
expression's test clips exactly as quality.py evaluates a single model (``affinegan evaluate
--expression``), and on clips in which two expressions rise together (``render_mix_clips``):
each truth frame's intensity per expression is inferred by the model's encoder along that
expression's residual stream (the oracle of ``affinegan evaluate``), the mix is decoded at those
intensities, and the expression region of the mixed truth is scored, beside decoding the first
expression alone. ``--singles <quality json>`` adds the single models' rows (quality.py writes
``<out>/quality<tag>.json``) and their generator sizes. ``--set KEY=VALUE ...`` overrides
TrainConfig fields after the preset, as in quality.py.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from quality import CLIPS, SIZE, TEST_CLIPS, bench_config, figures, parse_sets, table

from affinegan.cli.command_options import EvalConfig
from affinegan.config import apply_preset
from affinegan.core.intensity import infer_alpha
from affinegan.data.dataset import scan_clips
from affinegan.data.images import load_input_image, load_rgb
from affinegan.data.synthetic import render_dataset, render_mix_clips
from affinegan.evaluation import metrics
from affinegan.evaluation.evaluate import evaluate
from affinegan.evaluation.scoring import expression_metrics
from affinegan.generation.generate import decode_frames, load_generator, set_mode
from affinegan.training.train import train

MIXES = (("smile", "blink"), ("anger", "blink"))


def train_multi(a: argparse.Namespace, data: Path) -> dict[str, float]:
    """Train the multi-expression model (skipped with --eval_only); its CPU and wall time."""
    sets = parse_sets(a.set)
    overrides = {"preset": a.preset, "expressions": a.expressions, **sets}
    cfg = bench_config(data, a.name, Path(a.out), a.steps, a.ngf, a.seed, overrides)
    cfg = apply_preset(cfg, explicit=set(sets))
    torch.set_num_threads(a.threads)
    t0, c0 = time.perf_counter(), time.process_time()
    train(cfg)
    return {"train_cpu_s": time.process_time() - c0, "train_wall_s": time.perf_counter() - t0}


def evaluate_expression(a: argparse.Namespace, data: Path, expression: str) -> dict[str, Any]:
    """quality.py's evaluation of one expression's test clips, through the multi model."""
    ev = EvalConfig(
        dataroot=str(data / expression),
        name=a.name,
        checkpoints_dir=str(Path(a.out) / "checkpoints"),
        results_dir=str(Path(a.out) / "results" / expression),
        gpu_ids="-1",
        regenerate=True,
        expression=expression,
        out=str(Path(a.out) / "eval" / f"{a.name}_{expression}.json"),
    )
    return evaluate(ev)["summary"]


@torch.inference_mode()
def mix_scores(run: Path, clips_root: Path, names: tuple[str, ...]) -> dict[str, float]:
    """Region figures (peak third) of the mixed video and of the first expression alone,
    against truth clips of ``names`` rising together."""
    model = load_generator(run)
    G = model.G
    set_mode(G, dropout=False)
    index = [model.expressions.index(n) for n in names]
    per_clip: dict[str, list[float]] = {}
    for clip in scan_clips(clips_root, "test", min_frames=2):
        truth = np.stack([np.asarray(load_rgb(p, SIZE)) for p in clip.frames])
        x = torch.stack([load_input_image(p, SIZE) for p in clip.frames])
        enc = G.encode_mix(x[:1], index)
        base = G.encode(x, residual=False)
        fk = G.feature(base, 1.0, None)[None]
        alphas = []
        for e in index:
            G.expression = e
            one = G.encode(x[:1])
            f0, fr = G.feature(one, 1.0, 0.0), G.feature(one, 0.0, 1.0)
            alphas.append(infer_alpha(f0, fr, fk)[0])
        table_ = torch.stack(alphas, 1).numpy()  # (frames, expressions): the oracle per expression
        first = table_.copy()
        first[:, 1:] = 0
        videos = {"mix": decode_frames(G, enc, table_), "first": decode_frames(G, enc, first)}
        rec = expression_metrics(truth, videos)
        for video in videos:
            for key in ("region_gain_peak", "strength_peak"):
                per_clip.setdefault(f"{video}_{key}", []).append(rec[video][key])
        meta = json.loads((clips_root / "test" / "meta" / f"{clip.name}.json").read_text())
        for i, name in enumerate(names):
            per_clip.setdefault(f"spearman_{name}", []).append(
                metrics.spearman(table_[1:, i].tolist(), meta["intensities"][name][1:])
            )
    return {k: float(np.nanmean(v)) for k, v in per_clip.items()}


@torch.inference_mode()
def contact_sheet(run: Path, data: Path, out_png: Path, faces: int = 3, scale: int = 3) -> Path:
    """Held-out faces (rows): the input, each expression at intensity 1, then smile + blink and
    anger + blink mixes at 1 each: what ``generate --expression`` / ``--mix`` draw."""
    from PIL import Image, ImageDraw

    model = load_generator(run)
    G = model.G
    set_mode(G, dropout=False)
    names = model.expressions
    columns = [(n, {n: 1.0}) for n in names]
    columns += [("+".join(p), dict.fromkeys(p, 1.0)) for p in MIXES if set(p) <= set(names)]
    clips = scan_clips(data / names[0], "test", min_frames=1)[:faces]
    rows = []
    for clip in clips:
        rgb = np.asarray(load_rgb(clip.frames[0], SIZE))
        x = load_input_image(clip.frames[0], SIZE)[None]
        enc = G.encode_mix(x, range(len(names)))
        table_ = np.array([[w.get(n, 0.0) for n in names] for _, w in columns], np.float32)
        rows.append(np.concatenate([rgb, *decode_frames(G, enc, table_)], 1))
    grid = np.concatenate(rows, 0)
    head = 14
    sheet = Image.new("RGB", (grid.shape[1] * scale, grid.shape[0] * scale + head), "white")
    sheet.paste(
        Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale)), (0, head)
    )
    draw = ImageDraw.Draw(sheet)
    for i, label in enumerate(["input", *(c for c, _ in columns)]):
        draw.text((i * SIZE * scale + 4, 1), label, fill="black")
    sheet.save(out_png)
    return out_png


def generator_bytes(run: Path) -> int:
    """Size of the generator file generation loads (the average with --ema)."""
    ema = run / "latest_net_G_ema.pth"
    return (ema if ema.is_file() else run / "latest_net_G.pth").stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench_quality", help="data, checkpoints and reports")
    ap.add_argument("--expressions", default="smile,surprise,anger,blink")
    ap.add_argument("--steps", type=int, default=24000, help="the four single models' steps")
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--preset", default="expressive")
    ap.add_argument("--name", default="multi_expressive")
    ap.add_argument("--set", nargs="*", default=[], help="TrainConfig overrides KEY=VALUE")
    ap.add_argument("--singles", help="quality.py's JSON of the single models, for the table")
    ap.add_argument("--eval_only", action="store_true", help="evaluate the trained model only")
    a = ap.parse_args()
    out, exprs = Path(a.out), a.expressions.split(",")
    data = out / "data"
    for e in exprs:
        if not (data / e / "test" / "meta").is_dir():
            render_dataset(data / e, e, CLIPS, TEST_CLIPS, SIZE, a.seed)
    timing_file = out / f"{a.name}_train_time.json"  # kept apart, so --eval_only reports it
    if not a.eval_only:
        timing_file.write_text(json.dumps(train_multi(a, data)) + "\n")
    timing = {"train_cpu_s": None, "train_wall_s": None}
    if timing_file.is_file():
        timing = json.loads(timing_file.read_text())
    run = out / "checkpoints" / a.name
    rows = [
        {
            "name": f"{a.name}: {e}",
            "steps": a.steps,
            **timing,
            "summary": evaluate_expression(a, data, e),
        }
        for e in exprs
    ]
    mixes = {}
    for pair in MIXES:
        if all(n in exprs for n in pair):
            clips_root = out / "mix" / "+".join(pair)
            render_mix_clips(clips_root, pair, clips=TEST_CLIPS, size=SIZE, seed=a.seed)
            mixes["+".join(pair)] = mix_scores(run, clips_root, pair)
    sizes = {"multi": generator_bytes(run)}
    singles = json.loads(Path(a.singles).read_text()) if a.singles else []
    for r in singles:
        single_run = out / "checkpoints" / r["name"]
        if single_run.is_dir():
            sizes[r["name"]] = generator_bytes(single_run)
    contact_sheet(run, data, out / f"{a.name}_sheet.png")
    report = {"rows": rows, "singles": singles, "mixes": mixes, "sizes": sizes}
    (out / f"{a.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(table(rows, with_targets=False))
    if singles:
        print(table(singles, with_targets=False))
    print(json.dumps({"mixes": mixes, "sizes": sizes}, indent=1))
    for r in rows:
        fig = figures(r["summary"])
        print(r["name"], {k: fig[k] for k in ("oracle_region_gain_peak", "spearman")})


if __name__ == "__main__":
    main()
