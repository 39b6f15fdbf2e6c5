"""Fault injection (issue 13): a training process is killed with SIGKILL between steps, inside
a weight file's write, between the weight files and the state file, and inside the state
file's write. After every kill each checkpoint loads, and the run, resumed each time, ends
with exactly the weights of a run that was never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny import REPO, tiny_run_flags

from affinegan import checkpoint as ckpt
from affinegan.cli import main
from affinegan.data.synthetic import render_dataset

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

# Runs ``affinegan train ARGS`` and kills itself where $FAULT says:
#   step=N            at the start of this process's N-th training step;
#   torn=PREFIX:N     after writing half of the N-th temporary file named .PREFIX*;
#   before_state=1    after a save's weight files are in place, before its state file.
CHILD = r"""
import os, signal, sys
from pathlib import Path
import torch
from affinegan import checkpoint as ckpt
from affinegan.training import train as loop
from affinegan.cli import main

kind, _, arg = os.environ.get("FAULT", "").partition("=")
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if kind == "step":
    real_step, steps = loop.train_step, [0]
    def train_step(*a, **k):
        steps[0] += 1
        if steps[0] == int(arg):
            die()
        return real_step(*a, **k)
    loop.train_step = train_step
elif kind == "torn":
    prefix, n = arg.split(":")
    real_save, seen = torch.save, [0]
    def save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        if Path(f).name.startswith("." + prefix):
            seen[0] += 1
            if seen[0] == int(n):
                data = Path(f).read_bytes()
                Path(f).write_bytes(data[: len(data) // 2])
                die()
    torch.save = save
elif kind == "before_state":
    ckpt.save_state = lambda *a, **k: die()
sys.exit(main(["train", *sys.argv[1:]]))
"""


def _argv(data: Path, ckdir: Path) -> list[str]:
    return [
        *tiny_run_flags(data, ckdir),
        "--niter",
        "10",
        "--niter_decay",
        "0",
        "--save_latest_freq",
        "1",
        "--max_steps",
        "4",
        "--seed",
        "5",
    ]


def _weights(run_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {p.name: ckpt.load_weights(p) for p in sorted(run_dir.glob("[!.]*.pth"))}


def _all_load(run_dir: Path) -> int:
    """Every checkpoint under its real name loads; returns the step of the training state."""
    assert len(_weights(run_dir)) == 4
    return ckpt.load_state(run_dir)["progress"]["total_steps"]


@pytest.mark.slow
def test_killed_anywhere_resumes_to_the_same_weights(tmp_path: Path) -> None:
    data = render_dataset(
        tmp_path / "data", clips=3, test_clips=0, size=64, min_frames=4, max_frames=6
    )
    assert main(["train", *_argv(data, tmp_path / "straight")]) == 0
    straight = _weights(tmp_path / "straight" / "run")

    run = tmp_path / "faulty" / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    # (fault, resume?, state step after the kill, temporary files left behind)
    plan = [
        ("step=3", False, 2, 0),  # saved after steps 1 and 2, killed in step 3
        ("torn=latest_net_G:1", True, 2, 1),  # the save after step 3 dies in its first file
        ("before_state=1", True, 2, 0),  # weights of step 3 in place, state still of 2
        ("torn=latest_train_state:2", True, 3, 1),  # the state save after step 4 dies
    ]
    for fault, resume, state_step, temps in plan:
        args = [*_argv(data, tmp_path / "faulty"), *(["--continue_train"] if resume else [])]
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, *args],
            env={**env, "FAULT": fault},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == -signal.SIGKILL, (fault, proc.stderr[-2000:])
        assert _all_load(run) == state_step, fault
        assert len([p for p in run.iterdir() if ".tmp" in p.name]) == temps, fault
    assert main(["train", *_argv(data, tmp_path / "faulty"), "--continue_train"]) == 0
    assert _all_load(run) == 4 and not [p for p in run.iterdir() if ".tmp" in p.name]
    resumed = _weights(run)
    for name, sd in straight.items():
        for key, value in sd.items():
            assert torch.equal(value, resumed[name][key]), (name, key)
