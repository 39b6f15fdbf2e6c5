"""What each command does with its parsed options: set up the process, call its road, say
where the result is. One function per command, each taking that command's options dataclass
and returning the exit status, and the table of commands (``COMMANDS``) that ``cli`` parses
the options for and calls.

The roads are imported inside each function, so a command pays only for its own imports (and
``generate --backend onnxruntime`` never imports torch).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from affinegan.allocator import keep_freed_memory
from affinegan.cli.command_options import (
    CheckOptions,
    CompareOptions,
    DemoOptions,
    EvalConfig,
    ExportOptions,
    GenerateCommand,
    GifOptions,
    ModelsOptions,
    PrepareOptions,
    ServeOptions,
    SynthOptions,
)
from affinegan.config import GenerateConfig, TrainConfig, apply_preset
from affinegan.layout import DEMO_GIF, DEMO_STRIP, INDEX
from affinegan.runtime import thread_policy

log = logging.getLogger(__name__)


def train(cfg: TrainConfig) -> int:
    """Train a model (the original's ``train.py`` flags)."""
    from affinegan.training.train import train

    keep_freed_memory()
    thread_policy(cfg.torch_threads)
    print(f"model saved in {train(cfg)}")
    return 0


def generate(cfg: GenerateCommand) -> int:
    """Generate expression videos with PyTorch, or with onnxruntime and no torch at all."""
    if cfg.backend == "onnxruntime":
        from affinegan.export.onnx_runtime import generate_onnx

        out = generate_onnx(cfg, Path(cfg.onnx_dir) if cfg.onnx_dir else None)
    else:
        from affinegan.generation.generate import generate

        keep_freed_memory()
        thread_policy(cfg.torch_threads)
        out = generate(cfg)
    print(f"results in {out} (open {out / INDEX})")
    return 0


def gif(opts: GifOptions) -> int:
    """GIFs (and MP4s) from the frames generation wrote, the original's ``img2gif.py``."""
    from affinegan.generation.img2gif import make_gifs

    written = make_gifs(
        [name.strip() for name in opts.exp_names.split(",") if name.strip()],
        dataroot=Path(opts.dataroot),
        results_dir=Path(opts.results_dir),
        epoch=opts.epoch,
        phase=opts.phase,
        interval=opts.interval,
        fps=opts.fps,
        mp4=opts.mp4,
    )
    for path in written:
        print(path)
    return 0


def synth(opts: SynthOptions) -> int:
    """Render the procedural synthetic dataset: one expression, a multi-expression root, or
    clips of several expressions rising together (``--mix``)."""
    from affinegan.data.cartoon_pose import EXPRESSIONS
    from affinegan.data.synthetic import render_dataset, render_expressions, render_mix_clips

    names = list(EXPRESSIONS) if opts.expression == "all" else opts.expression.split(",")
    out = Path(opts.out)
    kw = {
        "size": opts.size,
        "seed": opts.seed,
        "min_frames": opts.min_frames,
        "max_frames": opts.max_frames,
        "zoom": opts.zoom,
    }
    if opts.mix:
        root = render_mix_clips(out, names, clips=opts.test_clips, **kw)
    elif len(names) > 1:
        root = render_expressions(out, names, clips=opts.clips, test_clips=opts.test_clips, **kw)
    else:
        root = render_dataset(out, names[0], opts.clips, opts.test_clips, **kw)
    print(f"synthetic '{opts.expression}' {'mix clips' if opts.mix else 'dataset'} in {root}")
    return 0


def evaluate(cfg: EvalConfig) -> int:
    """Score a run against ground-truth clips; print the summary and where the report is."""
    from affinegan.evaluation.evaluate import evaluate
    from affinegan.evaluation.report import terminal_summary

    thread_policy(cfg.torch_threads)
    result = evaluate(cfg)
    print(terminal_summary(result))
    print(f"report: {cfg.json_path.with_suffix('.html')} (JSON {cfg.json_path})")
    return 0


def compare(opts: CompareOptions) -> int:
    """Two evaluation JSONs side by side with deltas (and in a Markdown file with --out)."""
    from affinegan.evaluation.report import compare_table, load_result

    runs = load_result(Path(opts.run_a)), load_result(Path(opts.run_b))
    table = compare_table(*runs, opts.run_a, opts.run_b)
    print(table)
    if opts.out:
        Path(opts.out).write_text(table + "\n", encoding="utf-8")
    return 0


def prepare(opts: PrepareOptions) -> int:
    """Prepare every source, reporting each clip; exit 1 when some failed (the rest are kept)."""
    from affinegan.data.prepare import prepare

    # imageio-ffmpeg warns at every open of a rotated (portrait) video, which ffmpeg turns upright.
    logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)
    reports = []
    for report in prepare([Path(s) for s in opts.src], Path(opts.out), opts):
        reports.append(report)
        for line in report.lines():
            tqdm.write(line)
    failed = sum(not r.ok for r in reports)
    where = Path(opts.out) / opts.split
    print(
        f"{len(reports) - failed} of {len(reports)} clip(s) prepared in {where}"
        + (f"; {failed} failed" if failed else f"; check them with: affinegan check {opts.out}")
    )
    return 1 if failed else 0


def check(opts: CheckOptions) -> int:
    """List a dataset's problems; exit 1 when it has any (warnings allowed)."""
    from affinegan.data.check import check_dataset
    from affinegan.data.images import megapixels

    report = check_dataset(Path(opts.root), not opts.no_patch, megapixels(opts.max_megapixels))
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def models(opts: ModelsOptions) -> int:
    """List the shipped models: name, what it does, where its card is."""
    from affinegan.shipped import CARD_FILE, card_summary, shipped_models

    found = shipped_models()
    for name, folder in found.items():
        print(f"{name}: {card_summary(folder)} (card: {folder / CARD_FILE})")
    if not found:
        print("no models are shipped with this installation")
    return 0


def export(opts: ExportOptions) -> int:
    """Export the generator as ONNX graphs (+ a static web page); print what was checked."""
    from affinegan.export.onnx_export import export, format_report

    thread_policy(opts.torch_threads)
    report = export(
        opts.run_dir,
        opts.out_dir,
        opts.epoch,
        face=Path(opts.face) if opts.face else None,
        variants=[v for v in opts.variants.split(",") if v],
        expressions=[e for e in opts.expressions.split(",") if e] or None,
        web_dir=Path(opts.web) if opts.web else None,
        node_modules=Path(opts.node_modules) if opts.node_modules else None,
    )
    print(format_report(report))
    return 0


def serve(opts: ServeOptions) -> int:
    """Serve the web demo until Ctrl-C (or SIGTERM), then remove every file it wrote."""
    from affinegan.serving.serve import Limits
    from affinegan.serving.serve_page import serving

    limits = Limits.of(opts)
    thread_policy(opts.torch_threads)
    if opts.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this address can use the demo", opts.host)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serving(Path(opts.checkpoints_dir), opts.host, opts.port, limits, opts.gpu_ids) as url:
        print(f"AffineGAN demo on {url} (Ctrl-C to stop)", flush=True)
        with suppress(KeyboardInterrupt):
            stop.wait()
    return 0


def _demo_train_config(opts: DemoOptions, data: Path) -> TrainConfig:
    """A small CPU run of the preset on the demo's data: a few minutes, visible expression."""
    cfg = TrainConfig(
        dataroot=str(data),
        name=f"demo_{opts.expression}",
        checkpoints_dir=str(Path(opts.out) / "checkpoints"),
        netG=f"unet_{opts.size}",
        ngf=opts.ngf,
        ndf=opts.ngf,
        loadSize=opts.size + opts.size // 8,
        fineSize=opts.size,
        lr=opts.lr,
        niter=max(1, -(-opts.steps // opts.clips)) + 1,  # the original runs its last epoch at lr 0
        niter_decay=0,
        max_steps=opts.steps,
        num_threads=0,
        gpu_ids=opts.gpu_ids,
        print_freq=50,
        display_freq=250,
        save_latest_freq=500,
        save_epoch_freq=10**9,
        seed=opts.seed,
        preset=opts.preset,
    )
    # Its own schedule, a constant rate, replaces the preset's decay: 1500 steps decayed over
    # their second half draw the expression fainter (docs/experiments.md, "The demo").
    cfg = apply_preset(cfg, explicit={"niter", "niter_decay", "lr"})
    if cfg.ema > 0:  # a short run: the average spans its last tenth, not the preset's horizon
        cfg.ema = max(0.0, 1.0 - 10.0 / opts.steps)
    return cfg


def _shipped_demo(opts: DemoOptions) -> None:
    """The shipped smile model on its example photos (people it never trained on)."""
    from affinegan.generation.generate import generate
    from affinegan.shipped import DEFAULT_MODEL, shipped_models

    folder = shipped_models().get(DEFAULT_MODEL)
    photos = sorted((folder / "examples").glob("*.jpg")) if folder else []
    if not photos:
        log.warning("no shipped %s model with example photos here; skipping it", DEFAULT_MODEL)
        return
    gen = GenerateConfig(
        model=DEFAULT_MODEL,
        input=[str(p) for p in photos],
        results_dir=str(Path(opts.out) / "results"),
        eval=True,
        num_frames=16,
        curve="there-and-back",
        format="gif,mp4",
        gpu_ids=opts.gpu_ids,
    )
    results = generate(gen)
    print(f"shipped {DEFAULT_MODEL} model on {len(photos)} photos: open {results / INDEX}")


def demo(opts: DemoOptions) -> int:
    """The shipped model on example photos, then synthetic data -> a tiny model trained here
    -> GIF, MP4 and an HTML page."""
    from affinegan.data.synthetic import render_dataset
    from affinegan.generation.generate import generate
    from affinegan.training.train import train

    # The cores idle at start: two threads where both are free, one beside a CPU-bound process
    # (where two would wait on each other: docs/performance.md, benchmarks/busy.py).
    thread_policy(opts.torch_threads)
    _shipped_demo(opts)
    if opts.shipped_only:
        return 0
    out = Path(opts.out)
    data = render_dataset(
        out / "data", opts.expression, opts.clips, 3, opts.size, opts.seed, zoom=opts.zoom
    )
    keep_freed_memory()
    t0 = time.perf_counter()
    cfg = _demo_train_config(opts, data)
    train(cfg)
    log.info("trained %d steps in %.0f s", opts.steps, time.perf_counter() - t0)
    gen = GenerateConfig(
        dataroot=str(data),
        name=cfg.name,
        checkpoints_dir=cfg.checkpoints_dir,
        results_dir=str(out / "results"),
        eval=True,
        num_frames=20,
        format="png,gif,mp4",
        gpu_ids=opts.gpu_ids,
    )
    results = generate(gen)
    clips = sorted(p.name for p in (data / "test" / "img").iterdir() if p.is_dir())
    _demo_pictures([results / f"{clip}.gif" for clip in clips], results)
    print(f"demo done: open {results / INDEX} (and {DEMO_GIF}, {DEMO_STRIP} beside it)")
    return 0


def _demo_pictures(gifs: list[Path], results: Path) -> None:
    """The demo at a glance, from the GIFs it generated: ``demo.gif``, the faces side by side
    going to the peak and back (the README's first picture), and ``strip.png``, each face's
    input, middle and peak frames (docs/results.md)."""
    from PIL import Image

    from affinegan.files import atomic_output
    from affinegan.generation.video import read_frames, stack, tile, write_gif

    videos = [read_frames(gif) for gif in gifs]
    n = min(len(v) for v in videos)
    there_and_back = [*range(n), *range(n - 2, 0, -1)]
    write_gif([tile([v[i] for v in videos], scale=2) for i in there_and_back], results / DEMO_GIF)
    picks = (0, n // 2, n - 1)
    strip = stack([tile([v[i] for i in picks], scale=3) for v in videos])
    with atomic_output(results / DEMO_STRIP) as tmp:
        Image.fromarray(strip).save(tmp, format="PNG")


@dataclass(frozen=True)
class Command:
    """A command: its options dataclass, its body, and the defaults it changes from the
    original's (``affinegan generate`` is deterministic, the original's ``generate.py`` not)."""

    options: type
    body: Callable[[Any], int]
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)


COMMANDS: dict[str, Command] = {
    "train": Command(TrainConfig, train, "Train an AffineGAN model."),
    "generate": Command(
        GenerateCommand,
        generate,
        "Animate neutral faces with a trained model.",
        {"eval": True},  # --dropout: the original's stochastic output
    ),
    "gif": Command(GifOptions, gif, "GIFs from generated frames (img2gif.py)."),
    "synth": Command(SynthOptions, synth, "Render a synthetic dataset."),
    "demo": Command(
        DemoOptions,
        demo,
        "Synthetic data -> a tiny model trained on CPU -> GIF, MP4 and an HTML page.",
    ),
    "evaluate": Command(
        EvalConfig,
        evaluate,
        "SSIM/PSNR, identity (ACD) and intensity fidelity against ground-truth clips.",
    ),
    "compare": Command(CompareOptions, compare, "Two evaluations side by side."),
    "prepare": Command(
        PrepareOptions,
        prepare,
        "Raw videos or frame folders -> a training-ready dataset (crops, mouth masks).",
    ),
    "models": Command(
        ModelsOptions, models, "The models shipped with affinegan, usable by name (--model)."
    ),
    "check": Command(
        CheckOptions,
        check,
        "Validate a dataset and list every problem with its fix.",
    ),
    "serve": Command(
        ServeOptions,
        serve,
        "Web demo: photo -> expression video in the browser (pip install 'affinegan[web]').",
    ),
    "export": Command(
        ExportOptions,
        export,
        "Export a model as ONNX graphs (+ a static web page) that run without PyTorch.",
    ),
}

# The original's scripts at the repository root: their commands with the original's defaults.
SCRIPTS = {"train.py": "train", "generate.py": "generate", "img2gif.py": "gif"}
