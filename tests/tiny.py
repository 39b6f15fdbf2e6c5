"""Tiny configurations and inputs shared by the tests: 64 px, unet_64, ngf 4, K = 3."""

import subprocess
import sys
from pathlib import Path

import torch

from affinegan.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
K = 3
# The model flags of a tiny run on the command line.
TINY_FLAGS = [
    "--gpu_ids",
    "-1",
    "--netG",
    "unet_64",
    "--ngf",
    "4",
    "--ndf",
    "4",
    "--loadSize",
    "72",
    "--fineSize",
    "64",
]


def tiny_config(**kw) -> TrainConfig:
    """A deterministic tiny model (no noise, no dropout) unless ``kw`` says otherwise."""
    base = dict(
        dataroot="x",
        netG="unet_64",
        ngf=4,
        ndf=4,
        fineSize=64,
        loadSize=64,
        train_imagenum=K,
        noise_std=0.0,
        no_dropout=True,
        gpu_ids="-1",
        num_threads=0,
    )
    return TrainConfig(**{**base, **kw})


def random_batch(n: int = 1, patch: bool = True, seed: int = 0, channels_last: bool = False):
    """A training batch of random images and masks: A (n,3,64,64), B (n,K,3,64,64)."""
    g = torch.Generator().manual_seed(seed)
    batch = {
        "A": torch.rand(n, 3, 64, 64, generator=g) * 2 - 1,
        "B": torch.rand(n, K, 3, 64, 64, generator=g) * 2 - 1,
    }
    if patch:
        batch["mask_A"] = (torch.rand(n, 3, 64, 64, generator=g) > 0.7).float()
        batch["mask_B"] = (torch.rand(n, K, 3, 64, 64, generator=g) > 0.7).float()
    if channels_last:
        batch = {
            k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v
            for k, v in batch.items()
        }
    return batch


def tiny_run_flags(data: Path, checkpoints_dir: Path) -> list[str]:
    """``affinegan train`` flags of a tiny run named ``run``: K = 2, no workers, no web page."""
    return [
        *TINY_FLAGS,
        *("--dataroot", str(data), "--checkpoints_dir", str(checkpoints_dir), "--name", "run"),
        *("--no_html", "--num_threads", "0", "--train_imagenum", "2"),
    ]


def run_python(*args: str, code: int = 0, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` in the repo root as a user would; assert its exit code."""
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == code, proc.stderr[-3000:]
    return proc


def untrained_run(
    folder: Path, expressions: tuple[str, ...] = (), ngf: int = 4, config: object = None
) -> Path:
    """A run folder without training: a unet_64 generator's initial weights and its saved
    config (``config``: another ``train_opt.json`` content, as if edited by hand). For tests of
    what reads runs."""
    import json

    from affinegan import checkpoint as ckpt
    from affinegan.core.networks import Generator

    G = Generator(
        "unet_64", ngf, dropout=False, noise_std=0.0, expressions=max(1, len(expressions))
    )
    folder.mkdir(parents=True)
    ckpt.save_weights(folder, "latest", [("G", G)])
    saved = {"fineSize": 64, "netG": "unet_64", "ngf": ngf, "expressions": ",".join(expressions)}
    (folder / ckpt.CONFIG_FILE).write_text(json.dumps(saved if config is None else config))
    return folder
