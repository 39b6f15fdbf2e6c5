"""Export: ONNX graphs equal PyTorch, the torch-free onnxruntime backend, and the static page
driven in headless Chromium with every outside request blocked."""

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny import REPO, tiny_config

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from affinegan.data.images import load_input_image  # noqa: E402
from affinegan.data.synthetic import render_dataset, render_face  # noqa: E402
from affinegan.errors import AffineGANError  # noqa: E402
from affinegan.export import NPM_FILES, TOLERANCE, export  # noqa: E402
from affinegan.generate import animate, load_generator, set_mode  # noqa: E402
from affinegan.onnx_runtime import OnnxGenerator, load_face  # noqa: E402
from affinegan.train import train  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
NODE_MODULES = REPO / "web" / "node_modules"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two one-step unet_64 runs, plain and --blend: weights that are not an init pattern."""
    root = tmp_path_factory.mktemp("export")
    data = render_dataset(root / "data", "smile", clips=2, test_clips=1, size=64, max_frames=8)
    for name, blend in (("plain", False), ("blend", True)):
        cfg = tiny_config(
            dataroot=str(data),
            name=name,
            checkpoints_dir=str(root / "checkpoints"),
            train_imagenum=2,
            max_steps=1,
            display_freq=1000,
            blend=blend,
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
    for name in ("plain", "blend"):
        run = runs / "checkpoints" / name
        report = export(run, run / "onnx")
        assert max(report.max_diff.values()) <= TOLERANCE
        out[name] = report.out_dir
    return out


@pytest.mark.parametrize("name", ["plain", "blend"])
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
    assert ("image" in manifest["encode"]["outputs"]) == (name == "blend")


def test_variants_state_psnr_and_size(runs, face, tmp_path):
    report = export(
        runs / "checkpoints" / "plain", tmp_path / "v", face=face, variants=["fp16", "int8"]
    )
    assert report.sizes["int8"] < report.sizes["fp16"] < report.sizes["fp32"]
    assert report.psnr["fp16"] > 40 and report.psnr["int8"] > 25
    gen = OnnxGenerator.load(tmp_path / "v", "int8")
    assert gen.animate(load_face(face, 64), [0.5]).shape == (1, 64, 64, 3)
    with pytest.raises(AffineGANError, match="unknown variant 'bf16'"):
        export(runs / "checkpoints" / "plain", tmp_path / "w", variants=["bf16"])
    with pytest.raises(AffineGANError, match="no fp16 graphs"):
        OnnxGenerator.load(runs / "checkpoints" / "plain" / "onnx", "fp16")


def test_web_export_says_how_to_get_onnxruntime_web(runs, tmp_path):
    with pytest.raises(AffineGANError, match=r"npm ci --prefix web"):
        export(
            runs / "checkpoints" / "plain",
            tmp_path / "m",
            web_dir=tmp_path / "page",
            node_modules=tmp_path / "nowhere",
        )
    assert not (tmp_path / "m").exists()  # checked before any work


_TORCH_FREE = """
import sys
sys.modules["torch"] = None  # any import of torch now fails
from affinegan.config import GenerateConfig
from affinegan.onnx_runtime import generate_onnx
cfg = GenerateConfig(input=[sys.argv[1]], name="blend", checkpoints_dir=sys.argv[2],
                     results_dir=sys.argv[3], num_frames=4, format="png,gif")
print(generate_onnx(cfg))
"""


@pytest.mark.slow
def test_onnxruntime_backend_needs_no_torch_and_matches_generate(runs, exported, face, tmp_path):
    ckpts = str(runs / "checkpoints")
    subprocess.run(
        [sys.executable, "-c", _TORCH_FREE, str(face), ckpts, str(tmp_path / "ort")],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    common = ["--input", str(face), "--name", "blend", "--checkpoints_dir", ckpts]
    common += ["--num_frames", "4", "--gpu_ids", "-1"]
    cli = [sys.executable, "-m", "affinegan", "generate", *common]
    subprocess.run(
        [*cli, "--results_dir", str(tmp_path / "pt")],
        check=True,
        cwd=REPO,
        capture_output=True,
        timeout=300,
    )
    subprocess.run(
        [*cli, "--backend", "onnxruntime", "--results_dir", str(tmp_path / "cli")],
        check=True,
        cwd=REPO,
        capture_output=True,
        timeout=300,
    )
    pngs = sorted((tmp_path / "pt" / "blend" / "test_latest" / "images").glob("*.png"))
    assert len(pngs) == 5  # input + 4 frames
    for png in pngs:
        ref = np.asarray(Image.open(png)).astype(int)
        for other in ("ort", "cli"):
            got = np.asarray(Image.open(str(png).replace("/pt/", f"/{other}/"))).astype(int)
            assert np.abs(got - ref).max() <= 1, (other, png.name)
    assert (tmp_path / "ort" / "blend" / "test_latest" / "face.gif").is_file()


def _browser(playwright):
    """Headless Chromium, or skip when no browser can be launched here."""
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    try:
        if Path(CHROMIUM).is_file():
            return playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        return playwright.chromium.launch(args=args)
    except Exception as err:  # noqa: BLE001 - any launch failure means "no browser here"
        pytest.skip(f"no browser: {CHROMIUM} missing and Playwright cannot launch one ({err})")


@pytest.fixture
def static_server(tmp_path):
    """``python -m http.server`` on 127.0.0.1 in a thread, serving ``tmp_path / 'page'``."""
    root = tmp_path / "page"

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=root)
    )
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


@pytest.mark.slow
@pytest.mark.browser
def test_page_animates_a_photo_offline_and_matches_python(runs, exported, face, static_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not all((NODE_MODULES / f).is_file() for f in NPM_FILES):
        pytest.skip("onnxruntime-web not installed: npm ci --prefix web (needs Node)")
    root, origin = static_server
    export(runs / "checkpoints" / "blend", root.parent / "onnx", web_dir=root)
    gen = OnnxGenerator.load(exported["blend"])
    expected = gen.animate(load_face(face, 64), [0.7])[0].astype(int)
    with sync_api.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 720})
            blocked, errors = [], []
            page.on("pageerror", lambda e: errors.append(str(e)))

            def route(r):  # the page may reach its own server and nothing else
                if r.request.url.startswith(origin + "/"):
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(origin + "/index.html")
            page.evaluate("window.affinegan.ready")
            page.set_input_files("#photo", str(face))
            page.wait_for_selector("body[data-state=encoded]", timeout=60_000)
            rgb = np.array(page.evaluate("window.affinegan.frame(0.7)"), int).reshape(64, 64, 3)
            assert np.abs(rgb - expected).max() <= 2
            assert page.evaluate("window.affinegan.msPerFrame") > 0
            sync_api.expect(page.locator("#speed")).to_contain_text("ms/frame")
            assert page.evaluate("window.affinegan.video()") == 20
            with page.expect_download() as download:
                page.click("#gif")
            gif = root.parent / "page.gif"
            download.value.save_as(gif)
            assert Image.open(gif).n_frames == 20
            if os.environ.get("AFFINEGAN_SCREENSHOT"):  # the README's picture
                page.screenshot(path=os.environ["AFFINEGAN_SCREENSHOT"])
            assert blocked == [] and errors == []
        finally:
            browser.close()


def test_export_command_prints_the_difference(runs, tmp_path, capsys):
    from affinegan.cli import main

    run = runs / "checkpoints" / "plain"
    shutil.copytree(run, tmp_path / "ck" / "plain")
    assert main(["export", "--checkpoints_dir", str(tmp_path / "ck"), "--name", "plain"]) == 0
    assert (tmp_path / "ck" / "plain" / "onnx" / "decode.onnx").is_file()
    assert "largest |onnxruntime - PyTorch|" in capsys.readouterr().out
