"""Every file name of a run folder and of a results folder, in one place, so a writer and its
readers (and the original code, whose names these are) can never disagree.

Run folder ``<checkpoints_dir>/<name>/``::

    <label>_net_G.pth, _net_D, _net_D_alpha, _net_D_Patch   weights, the original's layout
    <label>_net_G_ema.pth                                    with --ema: G's moving average
    latest_train_state.pt                                    everything an exact resume needs
    train_opt.json, opt.txt                                  the resolved config (JSON, table)
    loss_log.txt, metrics.jsonl, tensorboard/                losses
    web/index.html, web/images/                              training samples
    onnx/ (model.json, the graphs)                           ``affinegan export``

Results folder ``<results_dir>/<name>/<phase>_<epoch>/``::

    index.html, images/<clip>_fake_B_list<i>.png, images/<clip>.gif|.mp4|...
    (and beside it eval_<phase>_<epoch>.json; the original's GIFs in <results_dir>/gifs/<name>/)

Imports nothing but the standard library.
"""

from __future__ import annotations

import re
from pathlib import Path

STATE_FILE = "latest_train_state.pt"
CONFIG_FILE = "train_opt.json"
OPTIONS_FILE = "opt.txt"
LOSS_LOG = "loss_log.txt"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
WEB_DIR = "web"
EXPORT_DIR = "onnx"
MANIFEST = "model.json"
INDEX = "index.html"
DEMO_GIF = "demo.gif"  # `affinegan demo`'s faces side by side, and their frame strip
DEMO_STRIP = "strip.png"
IMAGES_DIR = "images"
GIFS_DIR = "gifs"
FRAME_RE = re.compile(r"(?P<clip>.+)_fake_B_list(?P<index>\d+)\.png")


def weight_path(run_dir: Path | str, label: str, net: str) -> Path:
    """``<label>_net_<net>.pth``: ``label`` is ``latest`` or an epoch, ``net`` G, G_ema, D, ..."""
    return Path(run_dir) / f"{label}_net_{net}.pth"


def generator_file(label: str = "latest") -> str:
    """The generator's weight file name, what marks a folder as a trained run."""
    return weight_path("", label, "G").name


def samples_dir(run_dir: Path | str) -> Path:
    """Training samples: ``web/images``; the page is ``web/index.html``."""
    return Path(run_dir) / WEB_DIR / IMAGES_DIR


def results_folder(results_dir: Path | str, name: str, phase: str, epoch: str) -> Path:
    """``<results_dir>/<name>/<phase>_<epoch>``: what generation writes for one run."""
    return Path(results_dir) / name / f"{phase}_{epoch}"


def frame_name(clip: str, index: int) -> str:
    """The original's name of generated frame ``index`` of a clip (under ``images/``)."""
    return f"{clip}_fake_B_list{index}.png"


def input_name(clip: str) -> str:
    """The input face of a clip as generation saw it (under ``images/``)."""
    return f"{clip}_input_A.png"


def eval_json(results_dir: Path | str, name: str, phase: str, epoch: str) -> Path:
    """Where ``affinegan evaluate`` writes its JSON unless told otherwise."""
    return Path(results_dir) / name / f"eval_{phase}_{epoch}.json"


def gif_path(results_dir: Path | str, name: str, clip: str, epoch: str) -> Path:
    """The original ``img2gif.py``'s output: ``<results_dir>/gifs/<name>/<clip>_<epoch>.gif``."""
    return Path(results_dir) / GIFS_DIR / name / f"{clip}_{epoch}.gif"
