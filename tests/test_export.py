"""Export: ONNX graphs equal PyTorch, the torch-free onnxruntime backend, and the static page
driven in headless Chromium with every outside request blocked."""

import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny import REPO, tiny_config

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from browser import (  # noqa: E402
    CHROMIUM,
    launch_chromium,
    offline_page,
    open_with_photo,
    static_server,
)

from affinegan.data.cartoon import render_face
from affinegan.data.images import load_input_image
from affinegan.data.synthetic import render_dataset
from affinegan.errors import AffineGANError
from affinegan.export.onnx_export import NPM_FILES, NPM_PACKAGES, TOLERANCE, export
from affinegan.export.onnx_runtime import OnnxGenerator, load_face
from affinegan.generation.generate import animate, load_generator, set_mode
from affinegan.training.train import train

NODE_MODULES = REPO / "web" / "node_modules"
WARP = {"blend": True, "warp": True}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One-step unet_64 runs, plain, --blend and --blend --warp (grid_sample): weights that are
    not an init pattern."""
    root = tmp_path_factory.mktemp("export")
    data = render_dataset(root / "data", "smile", clips=2, test_clips=1, size=64, max_frames=8)
    for name, opts in (("plain", {}), ("blend", {"blend": True}), ("warp", WARP)):
        cfg = tiny_config(
            dataroot=str(data),
            name=name,
            checkpoints_dir=str(root / "checkpoints"),
            train_imagenum=2,
            max_steps=1,
            display_freq=1000,
            **opts,
        )
        train(cfg)
    return root


@pytest.fixture(scope="module")
def face(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("face") / "face.png"
    Image.fromarray(render_face(11, "smile", 0.0, 64)[0]).save(path)
    return path


@pytest.fixture(scope="module")
def exported(runs) -> dict[str, Path]:
    out = {}
    for name in ("plain", "blend", "warp"):
        run = runs / "checkpoints" / name
        report = export(run, run / "onnx")
        assert max(report.max_diff.values()) <= TOLERANCE
        out[name] = report.out_dir
    return out


@pytest.mark.parametrize("name", ["plain", "blend", "warp"])
def test_onnxruntime_frames_equal_pytorch(runs, exported, face, name):
    model = load_generator(runs / "checkpoints" / name)
    set_mode(model.G, dropout=False)
    gen = OnnxGenerator.load(exported[name])
    x = load_face(face, gen.size)
    np.testing.assert_array_equal(x[0], load_input_image(face, 64).numpy())
    for alphas in ([0.4], [0.0, 1.0], list(np.linspace(-0.2, 1.3, 7))):  # any frame count
        ours = gen.animate(x, alphas).astype(int)
        ref = animate(model.G, load_input_image(face, 64), alphas).astype(int)
        assert ours.shape == ref.shape == (len(alphas), 64, 64, 3)
        assert np.abs(ours - ref).max() <= 1
    manifest = json.loads((exported[name] / "model.json").read_text())
    assert manifest["image_size"] == 64 and manifest["expressions"] == [name]
    assert manifest["decode"]["inputs"][0] == "alpha"
    assert ("image" in manifest["encode"]["outputs"]) == (name != "plain")


def test_variants_state_psnr_and_size(runs, exported, face, tmp_path):
    report = export(
        runs / "checkpoints" / "plain", tmp_path / "v", face=face, variants=["fp16", "int8"]
    )
    assert report.sizes["int8"] < report.sizes["fp16"] < report.sizes["fp32"]
    assert report.psnr["fp16"] > 40 and report.psnr["int8"] > 25
    gen = OnnxGenerator.load(tmp_path / "v", "int8")
    assert gen.animate(load_face(face, 64), [0.5]).shape == (1, 64, 64, 3)
    with pytest.raises(AffineGANError, match="unknown variant 'bf16'"):
        export(runs / "checkpoints" / "plain", tmp_path / "w", variants=["bf16"])
    with pytest.raises(AffineGANError, match="2 names, but this generator has one expression"):
        export(runs / "checkpoints" / "plain", tmp_path / "w", expressions=["smile", "anger"])
    with pytest.raises(AffineGANError, match="no fp16 graphs"):
        OnnxGenerator.load(exported["plain"], "fp16")


def test_web_export_says_how_to_get_onnxruntime_web(runs, tmp_path):
    """From a pip install too (no web/ folder): the packages and versions are in the line."""
    pinned = json.loads((REPO / "web" / "package.json").read_text())["dependencies"]
    assert pinned == NPM_PACKAGES
    with pytest.raises(AffineGANError, match=r"npm install --prefix DIR onnxruntime-web@1\.30"):
        export(
            runs / "checkpoints" / "plain",
            tmp_path / "m",
            web_dir=tmp_path / "page",
            node_modules=tmp_path / "nowhere",
        )
    assert not (tmp_path / "m").exists()  # checked before any work


def _generate(args: list[str], out: Path, *, torch_free: bool = False) -> None:
    """``affinegan generate ARGS --results_dir OUT`` in a subprocess; ``torch_free``: with torch
    made unimportable (``sys.modules['torch'] = None``) before affinegan is imported."""
    code = "import sys; sys.modules['torch'] = None; " if torch_free else "import sys; "
    code += "from affinegan.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "generate", *args, "--results_dir", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def _args(runs: Path, face: Path) -> list[str]:
    return ["--input", str(face), "--name", "blend", "--checkpoints_dir", str(runs / "checkpoints")]


@pytest.mark.slow
def test_onnxruntime_backend_writes_what_the_pytorch_one_writes(runs, exported, face, tmp_path):
    args = [*_args(runs, face), "--num_frames", "4", "--format", "png,gif"]
    _generate([*args, "--backend", "onnxruntime"], tmp_path / "ort")
    _generate([*args, "--gpu_ids", "-1"], tmp_path / "pt")
    pngs = sorted((tmp_path / "pt" / "blend" / "test_latest" / "images").glob("*.png"))
    assert len(pngs) == 5  # input + 4 frames
    for png in pngs:
        ref = np.asarray(Image.open(png)).astype(int)
        got = np.asarray(Image.open(str(png).replace("/pt/", "/ort/"))).astype(int)
        assert np.abs(got - ref).max() <= 1, png.name
    assert (tmp_path / "ort" / "blend" / "test_latest" / "face.gif").is_file()


@pytest.mark.slow
def test_onnxruntime_backend_runs_without_torch(runs, exported, face, tmp_path):
    _generate([*_args(runs, face), "--backend", "onnxruntime"], tmp_path, torch_free=True)
    assert len(list((tmp_path / "blend" / "test_latest" / "images").glob("*.png"))) == 21


@contextlib.contextmanager
def page_with_photo(page_dir: Path, face: Path) -> Iterator[tuple]:
    """The page in ``page_dir`` served locally and opened offline in headless Chromium with
    ``face`` encoded: (page, blocked requests, page errors). Skips where no browser starts."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw, static_server(page_dir) as origin:
        try:
            browser = launch_chromium(pw)
        except Exception as err:  # noqa: BLE001 - any launch failure means "no browser here"
            pytest.skip(f"no browser: {CHROMIUM} missing and Playwright cannot launch one ({err})")
        try:
            page, blocked, errors = offline_page(browser, origin)
            open_with_photo(page, origin, face)
            yield page, blocked, errors
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.browser
def test_page_animates_a_photo_offline_and_matches_python(runs, exported, face, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not all((NODE_MODULES / f).is_file() for f in NPM_FILES):
        pytest.skip("onnxruntime-web not installed: npm ci --prefix web (needs Node)")
    root = tmp_path / "page"
    export(runs / "checkpoints" / "warp", tmp_path / "onnx", web_dir=root)  # grid_sample too
    gen = OnnxGenerator.load(exported["warp"])
    expected = gen.animate(load_face(face, 64), [0.7])[0].astype(int)
    with page_with_photo(root, face) as (page, blocked, errors):
        rgb = np.array(page.evaluate("window.affinegan.frame(0.7)"), int).reshape(64, 64, 3)
        assert np.abs(rgb - expected).max() <= 2
        assert page.evaluate("window.affinegan.msPerFrame") > 0
        sync_api.expect(page.locator("#speed")).to_contain_text("ms/frame")
        assert page.evaluate("window.affinegan.video()") == 20
        with page.expect_download() as download:
            page.click("#gif")
        gif = tmp_path / "page.gif"
        download.value.save_as(gif)
        assert Image.open(gif).n_frames == 20
        assert blocked == [] and errors == []


def test_export_command_prints_the_difference(runs, tmp_path, capsys):
    from affinegan.cli import main

    run = runs / "checkpoints" / "plain"
    shutil.copytree(run, tmp_path / "ck" / "plain")
    assert main(["export", "--checkpoints_dir", str(tmp_path / "ck"), "--name", "plain"]) == 0
    assert (tmp_path / "ck" / "plain" / "onnx" / "decode.onnx").is_file()
    assert "largest |onnxruntime - PyTorch|" in capsys.readouterr().out
