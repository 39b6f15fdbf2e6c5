"""Tiny end-to-end runs on synthetic data: train -> resume exactly -> generate."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import REPO, TINY_FLAGS, tiny_config, tiny_run_flags

from affinegan import checkpoint as ckpt
from affinegan.cli import main
from affinegan.cli.command_options import DemoOptions
from affinegan.config import (
    EXPERIMENTS_TAG,
    REMOVED_OPTIONS,
    GenerateConfig,
    TrainConfig,
    apply_preset,
)
from affinegan.core.build import build_nets
from affinegan.core.step import train_step
from affinegan.data.synthetic import render_dataset
from affinegan.errors import AffineGANError
from affinegan.generation.generate import generate
from affinegan.generation.video import read_frames
from affinegan.layout import STATE_FILE
from affinegan.options import validate
from affinegan.training.train import train


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    return render_dataset(root, "smile", clips=3, test_clips=2, size=64, seed=1, max_frames=10)


def tiny(data: Path, ckdir: Path, **kw) -> TrainConfig:
    base = dict(
        dataroot=str(data),
        name="run",
        checkpoints_dir=str(ckdir),
        loadSize=72,
        niter=2,
        niter_decay=1,
        print_freq=1,
        display_freq=4,
        save_latest_freq=1000,
        seed=3,
        noise_std=0.01,
        no_dropout=False,
    )
    return tiny_config(**{**base, **kw})


def weights(run_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {
        n: ckpt.load_weights(run_dir / f"latest_net_{n}.pth")
        for n in ("G", "D", "D_alpha", "D_Patch")
    }


def assert_same_weights(a, b):
    for net in a:
        for key in a[net]:
            torch.testing.assert_close(
                a[net][key], b[net][key], rtol=1e-5, atol=1e-6, msg=f"{net}.{key}"
            )


@pytest.mark.parametrize("stop_at", [4, 3])  # an epoch boundary (3 clips/epoch) and mid-epoch
def test_resume_is_exact(data, tmp_path, stop_at):
    straight = train(tiny(data, tmp_path / "a", max_steps=8))
    train(tiny(data, tmp_path / "b", max_steps=stop_at))
    resumed = train(tiny(data, tmp_path / "b", max_steps=8, continue_train=True))
    assert_same_weights(weights(straight), weights(resumed))
    state = ckpt.load_state(resumed)
    assert state["progress"]["total_steps"] == 8
    steps = [
        r["step"] for r in map(json.loads, (resumed / "metrics.jsonl").read_text().split("\n")[:-1])
    ]
    assert steps == list(range(1, 9))


def test_resume_is_exact_with_the_expressive_preset(data, tmp_path):
    """The preset's extras (EMA weights, region loss, blend, order) resume bit for bit too.
    Its schedule is sized by --max_steps, which this test changes to stop the first run: the
    next test covers that schedule with a Ctrl-C instead."""
    kw = dict(preset="expressive", ema=0.9, decay_fraction=0.0)  # ema: 8 steps move it
    mine = {"ema", "decay_fraction"}
    straight = train(apply_preset(tiny(data, tmp_path / "a", max_steps=8, **kw), mine))
    train(apply_preset(tiny(data, tmp_path / "b", max_steps=3, **kw), mine))
    resumed = train(
        apply_preset(tiny(data, tmp_path / "b", max_steps=8, continue_train=True, **kw), mine)
    )
    for run in (straight, resumed):
        assert json.loads((run / "train_opt.json").read_text())["lambda_region"] > 0
    ema = [ckpt.load_weights(r / "latest_net_G_ema.pth") for r in (straight, resumed)]
    assert_same_weights({"G_ema": ema[0]}, {"G_ema": ema[1]})
    assert_same_weights(weights(straight), weights(resumed))
    g = ckpt.load_weights(straight / "latest_net_G.pth")
    assert any(not torch.equal(g[k], ema[0][k]) for k in g)  # the average is not the last step
    from affinegan.generation.generate import load_generator

    used = load_generator(straight, size=64).G.state_dict()
    assert all(torch.equal(used[k], ema[0][k]) for k in used)  # generation uses the average
    raw = load_generator(straight, size=64, ema=False).G.state_dict()
    assert all(torch.equal(raw[k], g[k]) for k in raw)
    config = json.loads((straight / "train_opt.json").read_text())
    (straight / "train_opt.json").write_text(json.dumps({**config, "ema": 0.0}))
    stale = load_generator(straight, size=64).G.state_dict()  # a later run without --ema
    assert all(torch.equal(stale[k], g[k]) for k in stale)


def test_a_schedule_sized_by_the_step_budget_resumes_exactly_after_ctrl_c(data, tmp_path):
    """--decay_fraction turns --max_steps into epochs (3 clips: 8 steps = 3 epochs, the first at
    the full rate, then 2/3 and 1/3); a Ctrl-C and the same command again end where an
    uninterrupted run ends."""
    kw = dict(max_steps=8, decay_fraction=0.5)
    straight = train(tiny(data, tmp_path / "a", **kw))
    saved = json.loads((straight / "train_opt.json").read_text())
    assert (saved["niter"], saved["niter_decay"]) == (2, 2)
    calls = [0]

    def ctrl_c_after_3(*args, **kwargs):
        losses = train_step(*args, **kwargs)
        calls[0] += 1
        if calls[0] == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the loop stops after this step and saves
        return losses

    with pytest.raises(KeyboardInterrupt):
        train(tiny(data, tmp_path / "b", **kw), step=ctrl_c_after_3)
    assert ckpt.load_state(tmp_path / "b" / "run")["progress"]["total_steps"] == 3
    resumed = train(tiny(data, tmp_path / "b", continue_train=True, **kw))
    assert_same_weights(weights(straight), weights(resumed))
    constant = train(tiny(data, tmp_path / "c", max_steps=8, niter=10, niter_decay=0))
    g = [ckpt.load_weights(r / "latest_net_G.pth") for r in (straight, constant)]
    assert any(not torch.equal(g[0][k], g[1][k]) for k in g[0])


def test_resuming_from_weight_files_keeps_the_average(data, tmp_path):
    """Without a state file (original-style resume) the saved average goes on, not restarts."""
    kw = dict(preset="expressive", ema=0.9)
    run = train(apply_preset(tiny(data, tmp_path, max_steps=2, **kw), {"ema"}))
    before = ckpt.load_weights(run / "latest_net_G_ema.pth")
    (run / STATE_FILE).unlink()
    train(apply_preset(tiny(data, tmp_path, max_steps=1, continue_train=True, **kw), {"ema"}))
    after = ckpt.load_weights(run / "latest_net_G_ema.pth")
    g = ckpt.load_weights(run / "latest_net_G.pth")
    for k in after:  # one more step of the average: 0.9 of the saved one, 0.1 of the new G
        torch.testing.assert_close(after[k], 0.9 * before[k] + 0.1 * g[k])


def test_resume_exact_with_a_ragged_last_batch(data, tmp_path):
    # 3 clips, batch 2: epochs of 2 steps whose second batch holds one clip; stop at its end
    straight = train(tiny(data, tmp_path / "a", max_steps=5, batch_size=2))
    train(tiny(data, tmp_path / "b", max_steps=2, batch_size=2))
    assert ckpt.load_state(tmp_path / "b" / "run")["progress"]["epoch"] == 2  # epoch closed
    resumed = train(tiny(data, tmp_path / "b", max_steps=5, batch_size=2, continue_train=True))
    assert_same_weights(weights(straight), weights(resumed))


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--norm", "group"], "--norm 'group'"),
        (["--print_freq", "0"], "--print_freq 0: must be at least 1"),
        (["--netD", "pixel"], "--netD 'pixel'"),
        (["--fineSize", "100", "--loadSize", "100"], "use a multiple of"),
        (["--blend", "--output_nc", "1"], "--blend needs"),
        (["--lambda_order", "-1"], "--lambda_order -1.0"),
        (["--warp"], "--warp needs --blend"),
        (["--ema", "1"], "--ema 1.0: expected a decay in [0, 1)"),
        (["--amp", "fp8"], "--amp 'fp8'"),
        (["--niter", "0", "--niter_decay", "0"], "leaves no epoch to train"),
        (["--lambda_gan", "5"], "unrecognized arguments: --lambda_gan"),
    ],
)
def test_bad_flags_are_one_line_errors(data, tmp_path, capsys, flags, message):
    code = main(["train", "--dataroot", str(data), "--checkpoints_dir", str(tmp_path), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message in err[-1] and "Traceback" not in "\n".join(err)


def test_resuming_weights_of_another_size_is_a_clear_error(data, tmp_path, capsys):
    train(tiny(data, tmp_path, max_steps=1))
    (tmp_path / "run" / STATE_FILE).unlink()  # as with the original's checkpoints
    code = main(
        [
            "train",
            "--dataroot",
            str(data),
            "--name",
            "run",
            "--checkpoints_dir",
            str(tmp_path),
            "--continue_train",
            "--gpu_ids",
            "-1",
            "--netG",
            "unet_64",
            "--ngf",
            "8",
            "--loadSize",
            "64",
            "--fineSize",
            "64",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "weights do not fit" in err and "--ngf" in err


def test_full_run_writes_original_layout_and_generates(data, tmp_path):
    run = train(tiny(data, tmp_path, save_epoch_freq=2, batch_size=2))
    names = {p.name for p in run.iterdir()}
    assert {
        "latest_net_G.pth",
        "latest_net_D.pth",
        "latest_net_D_alpha.pth",
        "latest_net_D_Patch.pth",
        "2_net_G.pth",
        STATE_FILE,
        "opt.txt",
        "loss_log.txt",
        "train_opt.json",
    } <= names
    assert (run / "web" / "index.html").is_file() and any((run / "web" / "images").iterdir())
    assert "(epoch: 1, iters: 1," in (run / "loss_log.txt").read_text()
    assert ckpt.load_state(run)["progress"] == {"epoch": 4, "epoch_iter": 0, "total_steps": 6}
    # generation needs no model flags: they are read back from the run
    cfg = GenerateConfig(
        dataroot=str(data),
        name="run",
        checkpoints_dir=str(tmp_path),
        results_dir=str(tmp_path / "res"),
        gpu_ids="-1",
        eval=True,
        num_frames=7,
        format="png,gif,mp4",
    )
    out = generate(cfg)
    images = out / "images"
    assert sorted(p.name for p in images.glob("test_0000_fake_B_list*.png"))[0].endswith("0.png")
    assert len(list(images.glob("test_0000_fake_B_list*.png"))) == 7
    for clip in ("test_0000", "test_0001"):
        assert len(read_frames(out / f"{clip}.gif")) == 7
        assert len(read_frames(out / f"{clip}.mp4")) == 7
    assert "test_0000.mp4" in (out / "index.html").read_text()


def test_blend_and_order_flags_train_and_generate_from_weights_alone(data, tmp_path):
    """--blend and --lambda_order (not in the original) train, log and load without config."""
    argv = ["train", "--dataroot", str(data), "--name", "run", "--checkpoints_dir", str(tmp_path)]
    flags = [
        "--max_steps",
        "3",
        "--print_freq",
        "1",
        "--num_threads",
        "0",
        "--blend",
        "--lambda_order",
        "5",
    ]
    assert main([*argv, *TINY_FLAGS, *flags]) == 0
    run = tmp_path / "run"
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == 3 and all(r["G_order"] >= 0 for r in logged)
    (run / "train_opt.json").unlink()  # as for weights trained elsewhere
    from affinegan.generation.generate import load_generator

    G = load_generator(run, size=64).G.eval()
    assert G.blend
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out, _ = G(x, 1.0, 0.5)
    assert out.shape == x.shape and out.abs().max() <= 1


def test_the_config_rules_hold_without_the_command_line(data, tmp_path):
    """TrainConfig.check is the one set of rules: a config built in code is refused by
    ``validate`` and by ``train`` alike, with the flag's name."""
    for bad, message in ((dict(warp=True), "--warp needs --blend"), (dict(amp="x"), "--amp")):
        with pytest.raises(AffineGANError, match=message):
            validate(tiny(data, tmp_path, **bad))
        with pytest.raises(AffineGANError, match=message):
            train(tiny(data, tmp_path, **bad))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "option,value", [("lambda_gan", 5.0), ("alpha_levels", "all"), ("shared_d_alpha", True)]
)
def test_a_run_saved_with_a_removed_option_is_refused_in_one_line(
    data, tmp_path, capsys, option, value
):
    """Generation and resume refuse a run whose saved options turned on an option removed after
    the experiments' tag, naming both; the option's "off" value loads as before."""
    from affinegan.generation.generate import load_generator

    run = train(tiny(data, tmp_path, max_steps=1))
    saved = json.loads((run / "train_opt.json").read_text())
    off = {**saved, option: REMOVED_OPTIONS[option]}
    (run / "train_opt.json").write_text(json.dumps(off))
    assert load_generator(run, size=64).G is not None
    (run / "train_opt.json").write_text(json.dumps({**saved, option: value}))
    with pytest.raises(AffineGANError, match=f"--{option} .*{EXPERIMENTS_TAG}"):
        load_generator(run, size=64)
    state = torch.load(run / STATE_FILE, weights_only=False)
    state["config"][option] = value
    torch.save(state, run / STATE_FILE)
    code = main(["train", *tiny_run_flags(data, tmp_path), "--continue_train"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and f"--{option}" in err[-1] and EXPERIMENTS_TAG in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_generation_is_deterministic_with_eval_and_peak_included(data, tmp_path):
    train(tiny(data, tmp_path, max_steps=2))
    from affinegan.generation.generate import animate, load_generator

    model = load_generator(tmp_path / "run")
    model.G.eval()
    x = torch.rand(3, 64, 64) * 2 - 1
    frames = animate(model.G, x, [0.0, 0.5, 1.0], chunk=2)
    assert frames.shape == (3, 64, 64, 3) and frames.dtype.name == "uint8"
    full = animate(model.G, x, [1.0])
    assert (frames[2] == full[0]).all()  # chunking does not change a frame; alpha 1 included


def test_cli_bad_clip_gives_one_line_error(data, tmp_path, capsys):
    broken = tmp_path / "broken"
    os.system(f"cp -r {data} {broken}")
    bad = sorted((broken / "train" / "img" / "clip_0001").iterdir())[2]
    bad.write_bytes(b"")
    code = main(
        [
            "train",
            "--dataroot",
            str(broken),
            "--name",
            "x",
            "--checkpoints_dir",
            str(tmp_path / "ck"),
            "--gpu_ids",
            "-1",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: ") and str(bad) in err[-1]
    assert not any("Traceback" in line for line in err)


def test_missing_checkpoint_is_a_clear_error(data, tmp_path, capsys):
    code = main(
        [
            "generate",
            "--dataroot",
            str(data),
            "--name",
            "nope",
            "--checkpoints_dir",
            str(tmp_path),
            "--gpu_ids",
            "-1",
        ]
    )
    assert code == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_saves_and_resumes(data, tmp_path):
    args = [
        sys.executable,
        "-m",
        "affinegan",
        "train",
        "--dataroot",
        str(data),
        "--name",
        "int",
        "--checkpoints_dir",
        str(tmp_path),
        *TINY_FLAGS,
        "--niter",
        "100000",
        "--niter_decay",
        "0",
        "--num_threads",
        "0",
        "--print_freq",
        "1",
    ]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, cwd=REPO)
    log = tmp_path / "int" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and log.stat().st_size > 0):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--continue_train" in err
    state = ckpt.load_state(tmp_path / "int")
    assert state["progress"]["total_steps"] >= 1
    assert (tmp_path / "int" / "latest_net_G.pth").is_file()


@pytest.mark.slow
def test_demo_trains_the_preset_and_writes_videos(tmp_path):
    """`affinegan demo` end to end at a toy size: the expressive preset, its average, the GIFs."""
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--steps", "20", "--clips", "2", "--ngf", "4"]
    assert main(argv) == 0
    run = out / "checkpoints" / "demo_surprise"
    config = json.loads((run / "train_opt.json").read_text())
    assert config["preset"] == "expressive" and config["blend"] and config["lambda_region"] > 0
    assert config["decay_fraction"] == 0  # the demo keeps its short run at a constant rate
    assert config["lr"] == DemoOptions.lr  # ... a higher one than the preset's
    assert "zoom=1.5" in (out / "data" / "README.txt").read_text()  # close-ups
    assert 0 < config["ema"] < 1 and (run / "latest_net_G_ema.pth").is_file()
    results = out / "results" / "demo_surprise" / "test_latest"
    gifs = sorted(results.glob("test_*.gif"))
    assert len(gifs) == 3 and all(len(read_frames(g)) == 20 for g in gifs)
    side = read_frames(results / "demo.gif")  # the three faces at 2x, to the peak and back
    assert len(side) == 38 and side[0].shape == (128, 3 * 128 + 2 * 4, 3)
    strip = np.asarray(Image.open(results / "strip.png").convert("RGB"))
    assert strip.shape == (3 * 192 + 2 * 4, 3 * 192 + 2 * 4, 3)  # faces x (first, middle, peak)
    np.testing.assert_array_equal(strip[-192:, -192:][::3, ::3], read_frames(gifs[2])[-1])
    assert main(["demo", "--out", str(tmp_path / "x"), "--preset", "vivid"]) == 2
    assert not (tmp_path / "x").exists()  # refused before rendering anything


def test_the_loop_takes_another_step_function(data, tmp_path):
    """``train(cfg, step=...)`` runs the given iteration: the original's call pattern
    (benchmarks/reference.py) reaches the project step's weights (noise and dropout off)."""
    from reference import reference_train_step

    calls = []

    def reference(nets, opts, batch, cfg, so):
        calls.append(1)
        return reference_train_step(nets, opts, batch, cfg)

    kw = dict(max_steps=3, noise_std=0.0, no_dropout=True)
    runs = [
        train(tiny(data, tmp_path / "a", **kw)),
        train(tiny(data, tmp_path / "b", **kw), step=reference),
    ]
    assert len(calls) == 3
    # Compared by what the networks compute: biases ahead of instance norms get gradients of
    # rounding size only, which Adam scales up to whole steps without changing any output.
    torch.manual_seed(0)
    x, alpha = torch.rand(2, 3, 64, 64) * 2 - 1, torch.tensor([0.0, 0.7])
    outputs = []
    for run in runs:
        nets = build_nets(tiny(data, tmp_path))
        for name, net in (("G", nets.G), ("D", nets.D)):
            net.load_state_dict(weights(run)[name])
            net.eval()
        with torch.no_grad():
            fake = nets.G(x, 1.0, alpha)[0]
            outputs.append((fake, nets.D(torch.cat([x, fake], 1))))
    for ours, theirs in zip(*outputs, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_photo_pairs_get_a_note_about_their_one_target(tmp_path, caplog):
    """Neutral + peak pairs give K copies of one target per step: the run says so, once K > 1."""
    pairs = render_dataset(tmp_path / "pairs", "smile", clips=2, test_clips=1, min_frames=2,
                           max_frames=2)  # fmt: skip
    cfg = tiny_config(dataroot=str(pairs), checkpoints_dir=str(tmp_path), max_steps=1, no_html=True)
    with caplog.at_level("WARNING"):
        train(cfg)
    assert "every clip is a neutral + peak pair" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        train(replace(cfg, train_imagenum=1, name="k1"))
    assert "neutral + peak pair" not in caplog.text
