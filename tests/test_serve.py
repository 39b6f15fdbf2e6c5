"""The web demo: the browser-free core, the Gradio API, a real headless browser, and cleanup."""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from browser import CHROMIUM, launch_chromium
from PIL import Image
from tiny import tiny_config

from affinegan.data.cartoon import render_face
from affinegan.data.images import load_input_image
from affinegan.data.synthetic import render_dataset
from affinegan.errors import AffineGANError
from affinegan.generation.generate import animate, load_generator, set_mode
from affinegan.generation.video import read_frames
from affinegan.serving.serve import Animator, Limits, crop_available, find_models, read_photo
from affinegan.serving.serve_page import serving
from affinegan.training.train import train

if importlib.util.find_spec("gradio") is None or importlib.util.find_spec("gradio_client") is None:
    # find_spec, not importorskip: Gradio must first be imported by the server (see serving)
    pytest.skip("the web demo needs gradio and gradio_client", allow_module_level=True)
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword)")

LIMITS = Limits(max_bytes=200_000, max_pixels=512 * 512, max_frames=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    """A two-step unet_64 model: enough to exercise every path, not to look like anything."""
    root = tmp_path_factory.mktemp("serve")
    data = render_dataset(root / "data", "smile", clips=2, test_clips=1, size=64, max_frames=8)
    cfg = tiny_config(
        dataroot=str(data),
        name="tiny_smile",
        checkpoints_dir=str(root / "checkpoints"),
        train_imagenum=2,
        max_steps=2,
        display_freq=1000,
        noise_std=0.01,
        no_dropout=False,
    )
    train(cfg)
    return root / "checkpoints"


@pytest.fixture(scope="module")
def server(checkpoints) -> str:
    with serving(checkpoints, port=free_port(), limits=LIMITS) as url:
        yield url


@pytest.fixture
def face(tmp_path) -> Path:
    path = tmp_path / "face.png"
    Image.fromarray(render_face(7, "smile", 0.0, 96)[0]).save(path)
    return path


@pytest.mark.slow
def test_find_models_reads_size_and_infers_it_without_a_config(checkpoints, tmp_path):
    [m] = find_models(checkpoints)
    assert (m.name, m.size) == ("tiny_smile", 64)
    assert "tiny_smile (64 px, trained 20" in m.label
    bare = tmp_path / "ck" / "original" / "run"  # an original checkpoint: weights, no config
    bare.mkdir(parents=True)
    shutil.copy(checkpoints / "tiny_smile" / "latest_net_G.pth", bare)
    [m] = find_models(tmp_path / "ck")
    assert (m.name, m.size) == ("original/run", 64)
    assert find_models(tmp_path / "missing") == []


@pytest.mark.slow
def test_animator_reuses_the_encoding_and_matches_generate(checkpoints, face, tmp_path):
    anim = Animator(checkpoints, tmp_path / "out")
    first = anim.animate(face, "tiny_smile", num_frames=5, curve="there-and-back")
    second = anim.animate(face, "tiny_smile", num_frames=7, peak=0.5, curve="ease-in-out")
    assert (first.encoding_reused, second.encoding_reused) == (False, True)
    assert (anim.misses, anim.hits) == (1, 1)
    assert first.frames.shape == (5, 64, 64, 3) and len(second.frames) == 7
    assert len(read_frames(first.gif)) == 5 and len(read_frames(first.mp4)) == 5
    anim.animate(face, "tiny_smile", auto_crop=False)  # same key: still one encoding
    assert anim.misses == 1
    # the cached-encoding path gives exactly what `affinegan generate` would
    model = load_generator(checkpoints / "tiny_smile")
    set_mode(model.G, dropout=False)
    expected = animate(model.G, load_input_image(face, model.size), second.alphas)
    np.testing.assert_array_equal(second.frames, expected)


@pytest.mark.skipif(not crop_available(), reason="face auto-crop needs align.py and dlib")
@pytest.mark.slow
def test_auto_crop_is_part_of_the_cache_key(checkpoints, tmp_path):
    photo = tmp_path / "portrait.png"  # a face in a larger frame, as a photo would have it
    Image.fromarray(render_face(1, "smile", 0.0, 256)[0]).save(photo)
    anim = Animator(checkpoints, tmp_path / "out")
    whole = anim.animate(photo, "tiny_smile", num_frames=3)
    cropped = anim.animate(photo, "tiny_smile", num_frames=3, auto_crop=True)
    assert not cropped.encoding_reused and anim.misses == 2
    assert not np.array_equal(whole.frames, cropped.frames)


def test_no_model_says_how_to_train_one(tmp_path, face, monkeypatch):
    from affinegan import shipped

    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "none_shipped")
    with pytest.raises(AffineGANError, match="affinegan demo"):
        Animator(tmp_path / "empty", tmp_path / "out").animate(face, None)


def test_uploads_are_checked_before_decoding(tmp_path, face):
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(face.read_bytes()[:400])
    big = tmp_path / "big.png"
    Image.new("RGB", (600, 600), (90, 120, 150)).save(big)
    for path in (text, fake):
        with pytest.raises(AffineGANError, match=f"{path.name} is not an image"):
            read_photo(path, LIMITS)
    with pytest.raises(AffineGANError, match="truncated or corrupt"):
        read_photo(truncated, LIMITS)
    with pytest.raises(AffineGANError, match="600x600 pixels; photos may have at most 0.262"):
        read_photo(big, LIMITS)
    with pytest.raises(AffineGANError, match="photos may be at most"):
        read_photo(face, Limits(max_bytes=1000))
    with pytest.raises(AffineGANError, match="upload a photo"):
        read_photo(None, LIMITS)
    img, digest = read_photo(face, LIMITS)
    assert img.mode == "RGB" and img.size == (96, 96) and len(digest) == 64


@pytest.mark.slow
def test_api_returns_the_frames_asked_for_and_reuses_the_encoding(server, face, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False, analytics_enabled=False, download_files=tmp_path)

    def call(photo: Path, frames: int, curve: str = "linear") -> tuple:
        return client.predict(
            photo=handle_file(photo),
            model="tiny_smile",
            frames=frames,
            curve=curve,
            api_name="/animate",
        )

    gif, mp4, strip, downloads, status = call(face, 8)
    assert len(read_frames(Path(gif))) == 8 and len(read_frames(Path(mp4))) == 8
    assert len(strip) == 8 and strip[-1]["caption"] == "alpha 1.00"
    assert sorted(Path(p).suffix for p in downloads) == [".gif", ".mp4"]
    assert "photo encoded" in status
    gif, *_, status = call(face, 6, "there-and-back")
    assert "encoding reused" in status
    assert len(read_frames(Path(gif))) == 6


@pytest.mark.slow
def test_api_rejects_non_images_and_oversized_images(server, tmp_path, capfd):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False, analytics_enabled=False, download_files=tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("not a photo")
    many_pixels = tmp_path / "wide.png"  # few bytes, too many pixels
    Image.new("RGB", (1024, 512), (90, 120, 150)).save(many_pixels)
    many_bytes = tmp_path / "noise.png"  # too many bytes: refused at the upload
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    Image.fromarray(noise).save(many_bytes)
    assert many_bytes.stat().st_size > LIMITS.max_bytes
    cases = [
        (text, AppError, "notes.txt is not an image"),
        (many_pixels, AppError, "1024x512 pixels"),
        (many_bytes, ValueError, "exceeds the maximum file size of 200000 bytes"),
    ]
    for path, error, match in cases:
        with pytest.raises(error, match=match):
            client.predict(photo=handle_file(path), model="tiny_smile", api_name="/animate")
    assert "Traceback" not in capfd.readouterr().err  # the console gets one line per rejection


def _browser(playwright):
    """Headless Chromium, or skip when no browser can be launched here."""
    try:
        return launch_chromium(playwright)
    except Exception as err:  # noqa: BLE001 - any launch failure means "no browser here"
        pytest.skip(f"no browser: {CHROMIUM} missing and Playwright cannot launch one ({err})")


@pytest.mark.slow
@pytest.mark.browser
def test_browser_turns_an_upload_into_an_8_frame_gif(server, face, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = _browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            outside = []  # the page must work offline: nothing but the server itself
            page.on("request", lambda r: r.url.startswith(server) or outside.append(r.url))
            page.goto(server)
            page.set_input_files("#photo input[type=file]", str(face))
            page.wait_for_selector("#photo img")
            frames = page.locator("#frames input[type=number]")
            frames.fill("8")
            frames.press("Enter")
            page.click("#animate")
            sync_api.expect(page.locator("#status")).to_contain_text("8 frames", timeout=60_000)
            page.wait_for_selector("#strip img")
            src = page.locator("#gif img").get_attribute("src")
            response = page.request.get(src if src.startswith("http") else server + src)
            assert response.ok
            gif = tmp_path / "result.gif"
            gif.write_bytes(response.body())
            assert len(read_frames(gif)) == 8
            page.screenshot(path=str(tmp_path / "serve.png"), full_page=True)
            assert outside == []
        finally:
            browser.close()


@pytest.mark.slow
def test_main_binds_localhost_and_removes_its_files_on_sigterm(tmp_path):
    """``affinegan serve`` end to end: the no-model page, then SIGTERM leaves nothing behind."""
    import httpx

    tmp, cwd = tmp_path / "tmp", tmp_path / "cwd"
    tmp.mkdir()
    cwd.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    env.pop("GRADIO_TEMP_DIR", None)
    code = "import sys; from affinegan.cli import serve_main as main; sys.exit(main(sys.argv[1:]))"
    args = ["--checkpoints_dir", str(tmp_path / "none"), "--port", str(free_port())]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("AffineGAN demo on http://127.0.0.1:"), proc.stderr.read()
        url = line.split()[3]
        page = httpx.get(url + "config", timeout=30).text
        assert "No trained model found" in page and "affinegan demo" in page
        [work_dir] = tmp.iterdir()
        assert work_dir.name.startswith("affinegan-serve-")
        assert (work_dir / "gradio").is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(tmp.iterdir()) == [] and list(cwd.iterdir()) == []
