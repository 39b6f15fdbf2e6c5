"""``affinegan train | generate | gif | synth | demo``: the modern face of the original commands."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .config import (
    TORCH_THREADS_HELP,
    GenerateConfig,
    TrainConfig,
    apply_preset,
    build_parser,
    from_args,
)
from .errors import AffineGANError
from .runtime import keep_freed_memory, thread_policy  # torch-free: generate --backend onnxruntime

log = logging.getLogger("affinegan")


def _setup_logging(argv: list[str]) -> None:
    level = logging.DEBUG if "--verbose" in argv else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def train_main(argv: list[str] | None = None, prog: str = "affinegan train") -> int:
    """Train a model (the original's ``train.py`` flags)."""
    from .train import train

    parser = build_parser(TrainConfig, prog, "Train an AffineGAN model on one expression.")
    cfg = from_args(TrainConfig, parser, argv)
    keep_freed_memory()
    thread_policy(cfg.torch_threads)
    run_dir = train(cfg)
    print(f"model saved in {run_dir}")
    return 0


def generate_main(argv: list[str] | None = None, prog: str = "affinegan generate") -> int:
    """Generate expression videos (the original's ``generate.py`` flags).

    The original needed ``--eval`` for deterministic output; ``affinegan generate`` defaults to
    it and takes ``--dropout`` for the original's stochastic behaviour.
    """
    parser = build_parser(GenerateConfig, prog, "Animate neutral faces with a trained model.")
    if prog == "affinegan generate":
        parser.set_defaults(eval=True)
    backend = argparse.ArgumentParser(add_help=False)
    for p, default in ((parser, argparse.SUPPRESS), (backend, "pytorch")):
        p.add_argument(
            "--backend",
            choices=("pytorch", "onnxruntime"),
            default=default,
            help="onnxruntime: the graphs `affinegan export` wrote (--onnx_dir, default "
            "<checkpoints_dir>/<name>/onnx), without PyTorch (default: pytorch)",
        )
        p.add_argument(
            "--onnx_dir",
            default=argparse.SUPPRESS if p is parser else None,
            help="folder of model.json and the graphs, for --backend onnxruntime",
        )
    known, rest = backend.parse_known_args(argv)
    cfg = from_args(GenerateConfig, parser, rest)
    if known.backend == "onnxruntime":  # imports no torch
        from .onnx_runtime import generate_onnx

        out = generate_onnx(cfg, known.onnx_dir and Path(known.onnx_dir))
    else:
        from .generate import generate

        keep_freed_memory()
        thread_policy(cfg.torch_threads)
        out = generate(cfg)
    print(f"results in {out} (open {out / 'index.html'})")
    return 0


def gif_main(argv: list[str] | None = None) -> int:
    """GIFs from generated frames (the original's ``img2gif.py``)."""
    from .img2gif import main

    return main(argv)


def synth_main(argv: list[str] | None = None) -> int:
    """Render the procedural synthetic dataset."""
    from .data.synthetic import EXPRESSIONS, render_dataset

    p = argparse.ArgumentParser(
        prog="affinegan synth",
        description=synth_main.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="dataset root to write")
    p.add_argument("--expression", default="smile", choices=EXPRESSIONS)
    p.add_argument("--clips", type=int, default=12, help="training clips")
    p.add_argument("--test-clips", type=int, default=2, help="test clips (held-out identities)")
    p.add_argument("--size", type=int, default=64, help="frame size in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-frames", type=int, default=8)
    p.add_argument("--max-frames", type=int, default=30)
    a = p.parse_args(argv)
    root = render_dataset(
        Path(a.out), a.expression, a.clips, a.test_clips, a.size, a.seed, a.min_frames, a.max_frames
    )
    print(f"synthetic '{a.expression}' dataset in {root}")
    return 0


def demo_main(argv: list[str] | None = None) -> int:
    """Synthetic data -> a tiny model trained on CPU -> GIF, MP4 and an HTML page."""
    from .data.synthetic import render_dataset
    from .generate import generate
    from .train import train

    p = argparse.ArgumentParser(
        prog="affinegan demo",
        description=demo_main.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default="demo_out", help="folder for data, model and results")
    p.add_argument(
        "--expression",
        default="surprise",
        help="smile | surprise | anger | blink (surprise is the one a 64 px model draws "
        "visibly within the demo's minutes; docs/results.md)",
    )
    p.add_argument("--steps", type=int, default=1500, help="training steps")
    p.add_argument("--size", type=int, default=64, help="64 (unet_64) or 128 (unet_128)")
    p.add_argument("--ngf", type=int, default=16)
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gpu_ids", default="-1")
    p.add_argument("--torch_threads", type=int, default=0, help=TORCH_THREADS_HELP)
    p.add_argument(
        "--preset",
        default="expressive",
        help="training recipe (docs/results.md); --preset '' trains the paper's method",
    )
    a = p.parse_args(argv)
    apply_preset(TrainConfig(preset=a.preset))  # an unknown preset fails before any work
    out = Path(a.out)
    data = render_dataset(out / "data", a.expression, a.clips, 3, a.size, a.seed)
    netg = {64: "unet_64", 128: "unet_128", 256: "unet_256"}.get(a.size)
    if netg is None:
        raise AffineGANError(f"--size {a.size}: the demo supports 64, 128 or 256")
    epochs = max(1, -(-a.steps // a.clips))
    keep_freed_memory()
    # Two threads are 1.4x faster than one at the demo's size on idle cores, and 2.7x slower
    # beside another CPU-bound process: the policy takes the cores idle at start
    # (docs/performance.md, benchmarks/busy.py).
    thread_policy(a.torch_threads)
    t0 = time.perf_counter()
    cfg = TrainConfig(
        dataroot=str(data),
        name=f"demo_{a.expression}",
        checkpoints_dir=str(out / "checkpoints"),
        netG=netg,
        ngf=a.ngf,
        ndf=a.ngf,
        loadSize=a.size + a.size // 8,
        fineSize=a.size,
        niter=epochs + 1,  # the original's schedule runs its last epoch at lr 0
        niter_decay=0,
        max_steps=a.steps,
        num_threads=0,
        gpu_ids=a.gpu_ids,
        print_freq=50,
        display_freq=250,
        save_latest_freq=500,
        save_epoch_freq=10**9,
        seed=a.seed,
        preset=a.preset,
    )
    cfg = apply_preset(cfg)
    if cfg.ema > 0:  # a short run: the average spans its last tenth, not the preset's horizon
        cfg.ema = max(0.0, 1.0 - 10.0 / a.steps)
    train(cfg)
    log.info("trained %d steps in %.0f s", a.steps, time.perf_counter() - t0)
    gen = GenerateConfig(
        dataroot=str(data),
        name=cfg.name,
        checkpoints_dir=cfg.checkpoints_dir,
        results_dir=str(out / "results"),
        eval=True,
        num_frames=20,
        format="png,gif,mp4",
        gpu_ids=a.gpu_ids,
    )
    result = generate(gen)
    print(f"demo done: open {result / 'index.html'}")
    return 0


def prepare_main(argv: list[str] | None = None) -> int:
    """Raw videos or frame folders -> a training-ready dataset (crops, mouth masks)."""
    from .data.prepare import main

    return main(argv)


def check_main(argv: list[str] | None = None) -> int:
    """Validate a dataset and list every problem with its fix."""
    from .data.check import main

    return main(argv)


def evaluate_main(argv: list[str] | None = None) -> int:
    """SSIM/PSNR, identity (ACD) and intensity fidelity against ground-truth clips."""
    from .evaluate import main

    return main(argv)


def compare_main(argv: list[str] | None = None) -> int:
    """Two evaluation JSONs side by side."""
    from .evaluate import compare_main

    return compare_main(argv)


def export_main(argv: list[str] | None = None) -> int:
    """Export a model as ONNX graphs (+ a static web page) that run without PyTorch."""
    from .export import VARIANTS, export, format_report
    from .onnx_runtime import EXPORT_DIR

    p = argparse.ArgumentParser(
        prog="affinegan export",
        description=export_main.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--name", default="experiment_name", help="run name under --checkpoints_dir")
    p.add_argument("--checkpoints_dir", default="./checkpoints", help="where runs are saved")
    p.add_argument("--epoch", default="latest", help="which weights: latest or an epoch number")
    p.add_argument("--out", default="", help=f"output folder; empty: <run>/{EXPORT_DIR}")
    p.add_argument(
        "--face",
        default=None,
        help="photo to check the graphs on; none: the run's first test face, else a synthetic one",
    )
    p.add_argument(
        "--variants", default="", help=f"also write any of {','.join(VARIANTS)} (comma-separated)"
    )
    p.add_argument("--expressions", default="", help="expression names; empty: the run name")
    p.add_argument("--web", default=None, help="also write the static web page to this folder")
    p.add_argument("--node_modules", default=None, help="where onnxruntime-web and gifenc are")
    p.add_argument("--torch_threads", type=int, default=0, help=TORCH_THREADS_HELP)
    p.add_argument("--verbose", action="store_true", help="more log output")
    a = p.parse_args(argv)
    thread_policy(a.torch_threads)
    run_dir = Path(a.checkpoints_dir) / a.name
    report = export(
        run_dir,
        Path(a.out) if a.out else run_dir / EXPORT_DIR,
        a.epoch,
        face=a.face and Path(a.face),
        variants=[v for v in a.variants.split(",") if v],
        expressions=[e for e in a.expressions.split(",") if e] or None,
        web_dir=a.web and Path(a.web),
        node_modules=a.node_modules and Path(a.node_modules),
    )
    print(format_report(report))
    return 0


def serve_main(argv: list[str] | None = None) -> int:
    """Web demo: photo -> expression video in the browser (pip install 'affinegan[web]')."""
    from .serve import main

    return main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "train": train_main,
    "generate": generate_main,
    "gif": gif_main,
    "synth": synth_main,
    "demo": demo_main,
    "evaluate": evaluate_main,
    "compare": compare_main,
    "prepare": prepare_main,
    "check": check_main,
    "serve": serve_main,
    "export": export_main,
}


def run(func: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run a command: user errors become one line on stderr (exit 2), Ctrl-C exit 130."""
    _setup_logging(argv)
    try:
        return func(argv)
    except AffineGANError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<9} {func.__doc__.splitlines()[0]}" for name, func in COMMANDS.items()]
        print(
            "usage: affinegan COMMAND [options]   (affinegan COMMAND --help)\n\ncommands:\n"
            + "\n".join(lines)
        )
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    return run(COMMANDS[argv[0]], argv[1:])
