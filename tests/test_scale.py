"""Speed options never change results; torchrun data parallelism keeps ranks identical."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import REPO, TINY_FLAGS, random_batch, tiny_config

from affinegan import checkpoint as ckpt
from affinegan.core.build import build_nets, build_optimizers
from affinegan.core.step import StepOptions, train_step
from affinegan.data.synthetic import render_dataset
from affinegan.training.train import train


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    return render_dataset(root, "smile", clips=4, test_clips=1, size=64, seed=2, max_frames=10)


@pytest.mark.slow
def test_channels_last_gives_the_same_steps():
    cfg = tiny_config()
    torch.manual_seed(0)
    nets = build_nets(cfg)
    other = copy.deepcopy(nets)
    for _, net in other.items():
        net.to(memory_format=torch.channels_last)
    opts, other_opts = build_optimizers(nets, cfg), build_optimizers(other, cfg)
    for step in range(3):  # later steps see the updated weights: gradients agreed too
        torch.manual_seed(step)
        a = train_step(nets, opts, random_batch(), cfg)
        torch.manual_seed(step)
        b = train_step(other, other_opts, random_batch(channels_last=True), cfg)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_mixed_precision_step_runs_and_stays_close(dtype):
    cfg = tiny_config()
    torch.manual_seed(0)
    nets = build_nets(cfg)
    ref_nets = copy.deepcopy(nets)
    scaler = torch.amp.GradScaler("cpu") if dtype is torch.float16 else None
    torch.manual_seed(1)
    amp = train_step(
        nets, build_optimizers(nets, cfg), random_batch(), cfg, StepOptions(dtype, scaler)
    )
    torch.manual_seed(1)
    full = train_step(ref_nets, build_optimizers(ref_nets, cfg), random_batch(), cfg)
    assert all(torch.isfinite(v) for v in amp.values())
    assert all(p.dtype == torch.float32 for p in nets.G.parameters())  # weights stay float32
    torch.testing.assert_close(amp["G_L1"], full["G_L1"], rtol=0.05, atol=0.0)


@pytest.mark.slow
def test_fp16_loss_scale_is_saved_for_exact_resume(data, tmp_path):
    cfg = tiny_config(
        dataroot=str(data), checkpoints_dir=str(tmp_path), amp="fp16", max_steps=2, loadSize=72
    )
    state = ckpt.load_state(train(cfg))
    assert state["scaler"]["scale"] > 0


def test_amp_flag_validated(data, tmp_path):
    from affinegan.errors import AffineGANError

    with pytest.raises(AffineGANError, match="--amp"):
        train(
            tiny_config(dataroot=str(data), checkpoints_dir=str(tmp_path), amp="fp8", max_steps=1)
        )


def _torchrun(*args: str, timeout: int) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 ARGS`` on CPU, one thread per rank."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return subprocess.run(
        [*cmd, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.mark.slow
def test_torchrun_two_cpu_ranks(data, tmp_path):
    proc = _torchrun(
        "-m",
        "affinegan",
        "train",
        "--dataroot",
        str(data),
        "--name",
        "ddp",
        "--checkpoints_dir",
        str(tmp_path),
        *TINY_FLAGS,
        "--train_imagenum",
        "3",
        "--niter",
        "2",
        "--niter_decay",
        "0",
        "--num_threads",
        "0",
        "--print_freq",
        "1",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "weights identical on all 2 ranks" in proc.stderr
    run = tmp_path / "ddp"
    state = ckpt.load_state(run)
    # 4 clips over 2 ranks: 2 steps per epoch, 2 epochs; one RNG state per rank
    assert state["progress"] == {"epoch": 3, "epoch_iter": 0, "total_steps": 4}
    assert len(state["rng"]) == 2
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # one writer: every step logged once
    assert (run / "latest_net_G.pth").is_file()


_SHUTDOWN_PROBE = """
import json, os, sys, time, torch
from affinegan.training import distributed
world = distributed.init("cpu")
torch.optim.Adam(torch.nn.Linear(2, 2).parameters())  # what used to leave gloo threads behind
distributed.shutdown(world)
time.sleep(0.2)
names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
gloo = sorted(n for n in names if "gloo" in n)
open(os.path.join(sys.argv[1], f"rank{world.rank}.json"), "w").write(json.dumps(gloo))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.slow
def test_shutdown_stops_the_gloo_threads(tmp_path):
    # Threads left running at exit make a finished rank abort now and then (SIGABRT).
    script = tmp_path / "probe.py"
    script.write_text(_SHUTDOWN_PROBE)
    proc = _torchrun(str(script), str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "terminate called" not in proc.stderr
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == []
