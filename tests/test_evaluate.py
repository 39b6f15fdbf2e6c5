"""``affinegan evaluate`` end to end on a tiny synthetic run, and ``affinegan compare``."""

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tiny import tiny_config

from affinegan.cli import compare_main
from affinegan.cli import evaluate_main as main
from affinegan.cli.command_options import EvalConfig
from affinegan.config import GenerateConfig
from affinegan.data.synthetic import render_dataset
from affinegan.errors import AffineGANError
from affinegan.evaluation.evaluate import evaluate
from affinegan.evaluation.scoring import expression_metrics, peak_third, summarize
from affinegan.generation.generate import generate
from affinegan.training.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    """A 64 px dataset (2 held-out test clips) and a model trained for a few steps."""
    root = tmp_path_factory.mktemp("eval")
    data = render_dataset(
        root / "data", "smile", clips=2, test_clips=2, size=64, seed=2, min_frames=4, max_frames=6
    )
    train_tiny(data, root / "ck", "tiny")
    return data, root


def train_tiny(data: Path, checkpoints_dir: Path, name: str, **kw) -> None:
    """Three steps of a tiny model with noise and dropout on ``data``, as run ``name``."""
    cfg = tiny_config(
        dataroot=str(data),
        name=name,
        checkpoints_dir=str(checkpoints_dir),
        train_imagenum=2,
        niter=2,
        niter_decay=0,
        max_steps=3,
        no_html=True,
        print_freq=100,
        save_latest_freq=1000,
        noise_std=0.01,
        no_dropout=False,
    )
    train(replace(cfg, **kw))


def _paths(data: Path, root: Path) -> dict:
    """The options evaluate and generate share for the tiny run."""
    return dict(
        dataroot=str(data),
        name="tiny",
        checkpoints_dir=str(root / "ck"),
        results_dir=str(root / "results"),
        gpu_ids="-1",
    )


def _cfg(data: Path, root: Path, **kw) -> EvalConfig:
    return EvalConfig(**{**_paths(data, root), **kw})


@pytest.mark.slow
def test_evaluate_writes_reports_with_every_metric(run, capsys):
    pytest.importorskip("dlib")
    data, root = run
    out = root / "a" / "eval.json"
    argv = ["--dataroot", str(data), "--name", "tiny", "--checkpoints_dir", str(root / "ck")]
    argv += ["--results_dir", str(root / "results"), "--gpu_ids", "-1", "--out", str(out)]
    assert main(argv) == 0
    terminal = capsys.readouterr().out
    assert "SSIM" in terminal
    assert "expression region" in terminal and "strength at the peak third" in terminal
    result = json.loads(out.read_text())  # strict JSON: nan/inf stored as null
    for suffix in (".md", ".html", "_curves.png", "_alphas.png", "_contact.png"):
        assert Path(str(out.with_suffix("")) + suffix).stat().st_size > 0
    s = result["summary"]
    assert s["clips"] == 2 and 0 < s["ssim"] <= 1 and 0 < s["oracle_ssim"] <= 1
    assert s["psnr"] > 0 and s["oracle_psnr"] > 0
    assert -1 <= s["spearman"] <= 1 and 0 <= s["monotonic_fraction"] <= 1
    for key in ("acd_m", "acd_i", "acd_c", "gt_acd_i", "faces_missing_generated", "smooth_max"):
        assert key in s
    clip = result["clips"][0]
    assert clip["source"] == "generated"
    assert clip["alpha_inferred"][0] == pytest.approx(0.0, abs=1e-5)  # the input vs itself
    assert len(clip["schedule"]["ssim"]) == clip["frames"] - 1
    assert len(clip["true_intensity"]) == clip["frames"]
    assert "SSIM (oracle alphas)" in out.with_suffix(".md").read_text()
    # The expression figures: per frame, over the clip and its peak third, for both videos.
    assert 0 < clip["region"]["fraction"] < 1 and clip["region"]["threshold"] == 20
    for key in ("schedule", "oracle", "copy_input"):
        assert len(clip[key]["region_psnr"]) == len(clip[key]["strength"]) == clip["frames"] - 1
    assert clip["copy_input"]["strength_peak"] == 0.0
    for key in ("region_gain", "region_gain_peak", "strength_peak", "oracle_region_gain_peak"):
        assert s[key] is not None
    assert s["region_gain"] == pytest.approx(s["region_psnr"] - s["copy_region_psnr"])
    assert s["region_empty"] == 0
    assert "region gain" in out.with_suffix(".md").read_text()

    # compare: the same run twice gives zero deltas and exits 0.
    table_out = root / "cmp.md"
    assert compare_main([str(out), str(out), "--out", str(table_out)]) == 0
    assert "+0.0000" in capsys.readouterr().out and table_out.is_file()


def test_evaluate_reads_frames_generate_wrote(run):
    data, root = run
    gen = GenerateConfig(
        **_paths(data, root),
        eval=True,
        num_frames=9,
    )
    generate(gen)
    result = evaluate(_cfg(data, root, no_faces=True, out=str(root / "b.json")))
    clip = result["clips"][0]
    assert clip["source"] == "read" and clip["generated_frames"] == 9
    assert "acd_i" not in result["summary"]
    regen = evaluate(_cfg(data, root, no_faces=True, regenerate=True, out=str(root / "c.json")))
    assert regen["clips"][0]["source"] == "generated"


def test_no_ema_scores_the_last_weights(run, tmp_path):
    """A run trained with --ema is scored with its average by default and with G's last
    weights with --no_ema (which then ignores frames generate wrote), as the JSON says."""
    data, _ = run
    train_tiny(data, tmp_path / "ck", "avg", ema=0.5)
    paths = dict(dataroot=str(data), name="avg", checkpoints_dir=str(tmp_path / "ck"), gpu_ids="-1")
    paths["results_dir"] = str(tmp_path / "results")
    generate(GenerateConfig(**paths, eval=True, num_frames=5))

    def scored(**kw) -> dict:
        return evaluate(EvalConfig(**paths, no_faces=True, out=str(tmp_path / "e.json"), **kw))

    average, last = scored(regenerate=True), scored(no_ema=True)
    assert (average["run"]["weights"], last["run"]["weights"]) == ("G_ema", "G")
    assert last["clips"][0]["source"] == "generated"
    assert last["summary"]["psnr"] != average["summary"]["psnr"]
    (tmp_path / "ck" / "avg" / "latest_net_G_ema.pth").unlink()  # only the last weights left
    assert scored(regenerate=True)["summary"]["psnr"] == last["summary"]["psnr"]


def test_user_errors_name_the_path(run, tmp_path):
    data, root = run
    with pytest.raises(AffineGANError, match="no clip has ground-truth frames"):
        single = tmp_path / "single" / "test" / "img" / "c0"
        single.mkdir(parents=True)
        (single / "0001.png").write_bytes((data / "test/img/test_0000/0001.png").read_bytes())
        evaluate(_cfg(tmp_path / "single", root, no_faces=True))
    with pytest.raises(AffineGANError, match="no such checkpoint"):
        evaluate(_cfg(data, root, name="nope", no_faces=True))
    with pytest.raises(AffineGANError, match="missing.json: no such evaluation file"):
        compare_main([str(tmp_path / "missing.json"), str(tmp_path / "missing.json")])
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": 1}')
    with pytest.raises(AffineGANError, match="not an affinegan evaluation"):
        compare_main([str(bad), str(bad)])


def _square_clip(n: int = 7, change: int = 48) -> np.ndarray:
    """A 16x16 grey-100 clip whose 4x4 square (rows/columns 4..7) moves by change * k / (n-1)
    levels in frame k: the input, then a steadily growing expression."""
    frames = np.full((n, 16, 16, 3), 100, np.uint8)
    for k in range(n):
        frames[k, 4:8, 4:8] += np.uint8(change * k // (n - 1))
    return frames


def test_peak_third_is_the_last_third_of_relative_positions():
    assert peak_third(7).tolist() == [False, False, False, True, True, True]  # k/6 >= 2/3
    assert peak_third(4).tolist() == [False, True, True]  # 2/3 itself is in
    assert peak_third(2).tolist() == [True]


def test_expression_figures_of_hand_built_videos():
    truth = _square_clip()
    half = _square_clip(change=24)  # half the truth's change in every frame
    still = np.broadcast_to(truth[0], truth.shape)
    out = expression_metrics(truth, {"schedule": half, "oracle": truth, "still": still})
    region = out["region"]
    assert (region["pixels"], region["motion"], region["dilate"]) == (36, 1, 1)  # 6x6 square
    assert region["peak_frames"] == 3
    # Half the change: strength 0.5 wherever the truth moves, and half the error of copying.
    sched = out["schedule"]
    assert sched["strength_peak"] == pytest.approx(0.5)
    assert sched["strength"] == pytest.approx([0.5] * 6)
    assert sched["region_gain_peak"] == pytest.approx(10 * math.log10(4))  # every frame
    # The peak frame by hand: 24 levels off in 16 of 36 pixels, against 48 for copy-input.
    assert sched["region_psnr"][-1] == pytest.approx(10 * math.log10(255**2 * 36 / (24**2 * 16)))
    assert out["copy_input"]["region_psnr"][-1] == pytest.approx(
        10 * math.log10(255**2 * 36 / (48**2 * 16))
    )
    # The truth itself: 100 dB everywhere, strength 1; copying the input: gain 0, strength 0.
    assert out["oracle"]["region_psnr_mean"] == 100.0 and out["oracle"]["strength_peak"] == 1.0
    assert out["oracle"]["region_ssim_peak"] == pytest.approx(1.0)
    assert out["still"]["region_gain"] == 0.0 and out["still"]["region_gain_peak"] == 0.0
    assert out["still"]["strength_peak"] == 0.0
    assert out["copy_input"]["region_ssim_peak"] < 1.0


def test_a_clip_without_expression_is_counted_not_a_crash():
    still = np.full((4, 16, 16, 3), 100, np.uint8)
    still[1:, 0, 0] = 110  # a change below the threshold
    out = expression_metrics(still, {"schedule": still, "oracle": still})
    assert out["region"]["pixels"] == 0
    assert math.isnan(out["schedule"]["region_gain"]) and math.isnan(out["oracle"]["strength_peak"])
    # Beside a clip with an expression, the summary leaves it out of the means and counts it.
    clips = []
    for frames in (still, _square_clip(4)):
        rec = {"frames": len(frames), "true_intensity": None, "alpha_inferred": [0.0] * 4}
        rec["intensity"] = dict.fromkeys(
            ("spearman", "spearman_pixel_baseline", "monotonic_fraction", "kendall_tau"), 0.0
        )
        rec["intensity"]["alpha_peak"] = 0.0
        rec["gt"] = {"smooth_mean": 0.0, "smooth_max": 0.0}
        for key, values in expression_metrics(
            frames, {"schedule": frames, "oracle": frames}
        ).items():
            rec[key] = {"ssim_mean": 1.0, "psnr_mean": 100.0, "smooth_mean": 0.0}
            rec[key] |= {"smooth_max": 0.0, **values}
        rec["reconstruction"] = {"ssim_mean": 1.0, "psnr_mean": 100.0}
        clips.append(rec)
    s = summarize(clips)
    assert s["region_empty"] == 1 and s["strength_peak"] == 1.0 and s["region_psnr"] == 100.0
