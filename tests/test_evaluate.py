"""``affinegan evaluate`` end to end on a tiny synthetic run, and ``affinegan compare``."""

import json
from pathlib import Path

import pytest
from tiny import tiny_config

from affinegan.config import GenerateConfig
from affinegan.data.synthetic import render_dataset
from affinegan.errors import AffineGANError
from affinegan.evaluate import EvalConfig, compare_main, evaluate, main
from affinegan.generate import generate
from affinegan.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    """A 64 px dataset (2 held-out test clips) and a model trained for a few steps."""
    root = tmp_path_factory.mktemp("eval")
    data = render_dataset(
        root / "data", "smile", clips=2, test_clips=2, size=64, seed=2, min_frames=4, max_frames=6
    )
    cfg = tiny_config(
        dataroot=str(data),
        name="tiny",
        checkpoints_dir=str(root / "ck"),
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
    train(cfg)
    return data, root


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


def test_evaluate_writes_reports_with_every_metric(run, capsys):
    pytest.importorskip("dlib")
    data, root = run
    out = root / "a" / "eval.json"
    argv = ["--dataroot", str(data), "--name", "tiny", "--checkpoints_dir", str(root / "ck")]
    argv += ["--results_dir", str(root / "results"), "--gpu_ids", "-1", "--out", str(out)]
    assert main(argv) == 0
    assert "SSIM" in capsys.readouterr().out
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
