"""``affinegan serve``: a browser demo that turns one face photo into an expression video.

It follows the inference road of ``generate.py`` (photo -> encode once -> decode a batch of
alphas, paper Eq. 1: ``z_b + alpha * z_r``) and keeps the encoding of each (model, photo,
auto-crop) triple in an LRU cache, so trying other frame counts or curves on the same photo only
costs the decoder. ``Animator`` is that core without any web code; ``build_app`` puts a Gradio
page on it and ``serving`` runs the page. Everything the server writes (uploads, Gradio's cache,
results, the example faces) lives in one temporary folder that is deleted when it stops.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from . import checkpoint as ckpt
from .config import TORCH_THREADS_HELP
from .curves import CURVES, alpha_curve
from .data.images import decode, image_to_tensor
from .data.synthetic import render_face
from .errors import AffineGANError
from .generate import LoadedModel, decode_frames, load_generator, set_mode
from .networks import UNET_DEPTHS, Encoding
from .runtime import resolve_device, thread_policy
from .video import write_gif, write_mp4

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger(__name__)

MODEL_FILE = "latest_net_G.pth"
EXAMPLE_SEEDS = (1, 2, 3, 6)  # synthetic identities shown as example faces
TRAIN_HINT = (
    "train one first: `affinegan demo` (a small CPU model, a few minutes; then serve "
    "`--checkpoints_dir demo_out/checkpoints`) or `python train.py --dataroot DATA --name NAME "
    "--checkpoints_dir {checkpoints_dir}`, then press Refresh model list"
)
# Models work at 64-256 px: show results large and sharp rather than small or blurred.
_CSS = """
#gif img, #mp4 video, #strip img {image-rendering: pixelated}
#gif .image-frame, #gif img {width: 100%; height: 100%; object-fit: contain}
"""
_DECODE_CHUNK = 32  # alphas decoded per forward pass: bounds memory for long clips
_KEEP_RESULTS = 32  # result folders kept on disk; Gradio has its own copy of what it shows


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, so that no upload or setting can exhaust memory or disk."""

    max_bytes: int = 10 * 2**20
    max_pixels: int = 16_000_000
    max_frames: int = 120


@dataclass(frozen=True)
class ModelInfo:
    """A trained run the page offers: ``name`` (its folder under the checkpoints folder) is the
    only thing a client sends back, so requests can never point at other files."""

    name: str
    run_dir: Path
    size: int  # the square size it was trained at
    mtime: float  # of its generator weights: when it was (last) trained

    @property
    def label(self) -> str:
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.mtime))
        return f"{self.name} ({self.size} px, trained {date})"


@dataclass
class Animation:
    """One generated clip: the frames and where their GIF and MP4 were written."""

    frames: np.ndarray  # (N, H, W, 3) uint8
    alphas: list[float]
    gif: Path
    mp4: Path
    encoding_reused: bool
    seconds: float


def training_size(run_dir: Path) -> int:
    """``fineSize`` from the run's saved config, else the size its U-Net depth is built for."""
    config = ckpt.read_config(run_dir) or {}
    if config.get("fineSize"):
        return int(config["fineSize"])
    sd = ckpt.load_weights(Path(run_dir) / MODEL_FILE)
    return 2 ** UNET_DEPTHS[ckpt.infer_generator_options(sd)["netG"]]


def find_models(checkpoints_dir: Path) -> list[ModelInfo]:
    """Every folder under ``checkpoints_dir`` holding ``latest_net_G.pth``, newest first."""
    root = Path(checkpoints_dir)
    models = []
    for weights in sorted(root.rglob(MODEL_FILE)) if root.is_dir() else []:
        run_dir = weights.parent
        try:
            size = training_size(run_dir)
        except AffineGANError as err:
            log.warning("skipping model %s: %s", run_dir, err)
            continue
        name = run_dir.relative_to(root).as_posix() if run_dir != root else root.name
        models.append(ModelInfo(name, run_dir, size, weights.stat().st_mtime))
    return sorted(models, key=lambda m: m.mtime, reverse=True)


def read_photo(path: Path | str | None, limits: Limits) -> tuple[Image.Image, str]:
    """Check and decode an upload -> (RGB image, SHA-256 of its bytes).

    Size limits are checked before decoding (the header gives the pixel count), and every
    rejection is one line for the page that names the file by its uploaded name.
    """
    if path is None:
        raise AffineGANError("upload a photo or pick an example face first")
    path = Path(path)
    try:
        nbytes = path.stat().st_size
        if nbytes > limits.max_bytes:
            raise AffineGANError(
                f"{path.name} is {nbytes / 2**20:.1f} MB; photos may be at most "
                f"{limits.max_bytes / 2**20:g} MB"
            )
        data = path.read_bytes()
    except OSError as err:
        raise AffineGANError(f"{path.name}: cannot read the upload ({err.strerror})") from None
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except Image.DecompressionBombError:
        raise AffineGANError(
            f"{path.name} has far too many pixels; photos may have at most "
            f"{limits.max_pixels / 1e6:.3g} megapixels"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise AffineGANError(
            f"{path.name} is not an image: upload a photo (JPEG, PNG, WebP, ...)"
        ) from None
    if width * height > limits.max_pixels:
        raise AffineGANError(
            f"{path.name} is {width}x{height} pixels; photos may have at most "
            f"{limits.max_pixels / 1e6:.3g} megapixels"
        )
    # The loader of every command: upright by EXIF, colour-managed, 16-bit and alpha handled.
    rgb = decode(data, path.name, limits.max_pixels).convert("RGB")
    return rgb, hashlib.sha256(data).hexdigest()


def crop_available() -> bool:
    """Whether face auto-crop can be offered: ``affinegan.data.align`` and dlib are installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("affinegan.data.align", "dlib"))


def model_input(img: Image.Image, size: int, auto_crop: bool) -> Image.Image:
    """What the generator sees: the face crop, or the whole photo, at ``size x size`` bicubic
    (aspect ignored, as in ``affinegan generate``)."""
    if auto_crop:
        try:
            from .data.align import crop_to_face
        except ImportError as err:
            raise AffineGANError(f"face auto-crop is unavailable ({err})") from None
        img = crop_to_face(img, size)
    return img if img.size == (size, size) else img.resize((size, size), Image.BICUBIC)


class Animator:
    """Photo + model + settings -> GIF and MP4: the web demo's core, usable without a browser.

    Generators and encodings are cached (keyed by the weights' path and mtime, so a model
    retrained while serving is picked up); ``hits`` and ``misses`` count encoding-cache use.
    """

    def __init__(
        self,
        checkpoints_dir: Path,
        out_dir: Path,
        limits: Limits = Limits(),
        device: torch.device | str = "cpu",
        cache_size: int = 16,
    ) -> None:
        self.checkpoints_dir = Path(checkpoints_dir)
        self.out_dir = Path(out_dir)
        self.limits = limits
        self.device = torch.device(device)
        self.cache_size = cache_size
        self.hits = 0
        self.misses = 0
        self.models = find_models(self.checkpoints_dir)
        self._generators: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._encodings: OrderedDict[tuple[str, int, str, bool], Encoding] = OrderedDict()
        self._requests = 0
        self._lock = threading.Lock()  # Gradio calls from worker threads; one model at a time

    def refresh(self) -> list[ModelInfo]:
        """Rescan the checkpoints folder (for models trained while the server runs)."""
        self.models = find_models(self.checkpoints_dir)
        return self.models

    def model(self, name: str | None) -> ModelInfo:
        for info in self.models:
            if info.name == name:
                return info
        if not self.models:
            hint = TRAIN_HINT.format(checkpoints_dir=self.checkpoints_dir)
            raise AffineGANError(f"no trained model under {self.checkpoints_dir}: {hint}")
        raise AffineGANError(f"unknown model {name!r}: pick one of the list (or refresh it)")

    def animate(
        self,
        photo: Path | str | None,
        model: str | None,
        num_frames: int = 16,
        peak: float = 1.0,
        curve: str = "linear",
        auto_crop: bool = False,
        fps: float = 10.0,
    ) -> Animation:
        """Encode the photo once (or reuse its encoding) and decode one frame per alpha."""
        t0 = time.perf_counter()
        if not 1 <= num_frames <= self.limits.max_frames:
            raise AffineGANError(f"frames must be between 1 and {self.limits.max_frames}")
        if not 0 < fps <= 50:
            raise AffineGANError(f"frames per second must be in (0, 50], got {fps}")
        alphas = alpha_curve(curve, num_frames, peak)
        info = self.model(model)
        img, digest = read_photo(photo, self.limits)
        with self._lock:
            weights = info.run_dir / MODEL_FILE
            try:
                stamp = weights.stat().st_mtime_ns
            except FileNotFoundError:
                raise AffineGANError(f"model {info.name} was deleted: refresh the list") from None
            try:
                G, size = self._generator(info.run_dir, stamp)
            except AffineGANError as err:  # its paths are the server's: the log has them
                log.error("model %s: %s", info.name, err)
                raise AffineGANError(
                    f"model {info.name} cannot be loaded; the server's log says why"
                ) from None
            key = (str(info.run_dir), stamp, digest, auto_crop)
            enc = self._encodings.get(key)
            reused = enc is not None
            if reused:
                self._encodings.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
                x = image_to_tensor(model_input(img, size, auto_crop)).to(self.device)
                with torch.inference_mode():
                    enc = G.encode(x[None])
                self._remember(self._encodings, key, enc)
            frames = decode_frames(G, enc, alphas, _DECODE_CHUNK)
            self._requests += 1
            folder = self.out_dir / f"{self._requests:06d}"
        stem = f"{info.name.replace('/', '_')}_{curve}"
        gif = write_gif(list(frames), folder / f"{stem}.gif", fps)
        mp4 = write_mp4(list(frames), folder / f"{stem}.mp4", fps)
        self._prune()
        seconds = time.perf_counter() - t0
        log.info(
            "%d frames of %s in %.2f s, encoding reused: %s",
            len(frames),
            info.name,
            seconds,
            reused,
        )
        return Animation(frames, alphas, gif, mp4, reused, seconds)

    def _generator(self, run_dir: Path, stamp: int) -> tuple[torch.nn.Module, int]:
        key = (str(run_dir), stamp)
        loaded = self._generators.get(key)
        if loaded is None:
            loaded = load_generator(run_dir, "latest", size=training_size(run_dir))
            loaded.G.to(self.device)
            set_mode(loaded.G, dropout=False)
            self._remember(self._generators, key, loaded, limit=2)
        else:
            self._generators.move_to_end(key)
        return loaded.G, loaded.size

    def _remember(self, cache: OrderedDict, key: Any, value: Any, limit: int = 0) -> None:
        cache[key] = value
        while len(cache) > (limit or self.cache_size):
            cache.popitem(last=False)

    def _prune(self) -> None:
        folders = sorted(p for p in self.out_dir.iterdir() if p.is_dir())
        for old in folders[:-_KEEP_RESULTS]:
            shutil.rmtree(old, ignore_errors=True)


def write_examples(folder: Path, size: int = 256) -> list[Path]:
    """Neutral synthetic faces for the example gallery (never real people's photos)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in EXAMPLE_SEEDS:
        path = folder / f"synthetic_face_{seed}.png"
        Image.fromarray(render_face(seed, "smile", 0.0, size)[0]).save(path)
        paths.append(path)
    return paths


def _import_gradio() -> Any:
    """Import Gradio offline: no telemetry, no Hugging Face Hub calls."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import gradio
    except ImportError:
        raise AffineGANError("the web demo needs Gradio: pip install 'affinegan[web]'") from None
    return gradio


def _status(anim: Animation, model: str) -> str:
    cache = "encoding reused (cache hit)" if anim.encoding_reused else "photo encoded"
    return f"{len(anim.frames)} frames from **{model}** in {anim.seconds:.2f} s; {cache}."


def _reject(gr: Any, message: str) -> NoReturn:
    """Refuse a request: one line in the server's log (not Gradio's traceback), the message
    on the page."""
    log.info("rejected a request: %s", message)
    raise gr.Error(message, print_exception=False)


def build_app(animator: Animator, examples: Sequence[Path] = ()) -> gr.Blocks:
    """The Gradio page on ``animator``; the event is also the API endpoint ``/animate``.

    ``GRADIO_TEMP_DIR`` must already point at the server's temp folder (see ``serving``):
    Gradio's components read it when they are built.
    """
    gr = _import_gradio()

    def on_animate(
        photo: dict | None,
        model: str | None,
        frames: float,
        peak: float,
        curve: str,
        auto_crop: bool,
        fps: float,
    ) -> tuple[str, str, list[tuple[np.ndarray, str]], list[str], str]:
        """Gets the raw upload (``preprocess=False``): ``gr.Image`` would open it with PIL and
        fail on a non-image with a bare traceback, while ``Animator`` says what is wrong.
        Gradio has already checked that the path lies in its upload folder."""
        try:
            settings = (int(frames), float(peak), str(curve), bool(auto_crop), float(fps))
        except (TypeError, ValueError) as err:
            _reject(gr, f"invalid settings ({err})")
        try:
            anim = animator.animate(photo.get("path") if photo else None, model, *settings)
        except AffineGANError as err:
            _reject(gr, str(err))
        strip = [(f, f"alpha {a:.2f}") for f, a in zip(anim.frames, anim.alphas, strict=True)]
        files = [str(anim.gif), str(anim.mp4)]
        return str(anim.gif), str(anim.mp4), strip, files, _status(anim, model)

    def on_refresh(current: str | None) -> tuple[gr.Dropdown, gr.Markdown]:
        models = animator.refresh()
        names = [m.name for m in models]
        value = current if current in names else (names[0] if names else None)
        return (
            gr.Dropdown(choices=[(m.label, m.name) for m in models], value=value),
            gr.Markdown(visible=not models),
        )

    models = animator.models
    can_crop = crop_available()
    with gr.Blocks(title="AffineGAN: photo to expression video") as app:
        gr.Markdown(
            "# AffineGAN: one photo to an expression video\n"
            "Upload a neutral, frontal face photo (or pick a synthetic example), choose an "
            "expression model and press **Animate**. The photo is encoded once; each frame "
            "decodes `z_b + alpha * z_r` for one intensity alpha along the chosen curve."
        )
        where = animator.checkpoints_dir
        hint = TRAIN_HINT.format(checkpoints_dir=where)
        notice = gr.Markdown(
            f"**No trained model found under `{where}`**: {hint}.",
            visible=not models,
            elem_id="no-models",
        )
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.Image(
                    label="Neutral face photo",
                    type="filepath",
                    sources=["upload", "clipboard"],
                    elem_id="photo",
                    height=300,
                )
                if examples:
                    gr.Examples(
                        [[str(p)] for p in examples],
                        inputs=[photo],
                        label="Example faces (synthetic)",
                        cache_examples=False,
                    )
                model = gr.Dropdown(
                    choices=[(m.label, m.name) for m in models],
                    value=models[0].name if models else None,
                    label="Expression model",
                    elem_id="model",
                )
                refresh = gr.Button("Refresh model list", size="sm")
                frames = gr.Slider(
                    2,
                    animator.limits.max_frames,
                    value=16,
                    step=1,
                    label="Frames",
                    elem_id="frames",
                )
                peak = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Peak intensity (alpha)")
                curve = gr.Radio(list(CURVES), value="linear", label="Intensity curve")
                auto_crop = gr.Checkbox(
                    value=False,
                    label="Auto-crop to the face",
                    interactive=can_crop,
                    info=None if can_crop else "unavailable: pip install 'affinegan[face]'",
                )
                fps = gr.Slider(1, 50, value=10, step=1, label="Frames per second")
                go = gr.Button("Animate", variant="primary", elem_id="animate")
            with gr.Column(scale=3):
                status = gr.Markdown(label="Status", elem_id="status")
                with gr.Row():
                    gif = gr.Image(
                        label="Animated GIF",
                        type="filepath",
                        interactive=False,
                        height=320,
                        elem_id="gif",
                    )
                    video = gr.Video(label="MP4", interactive=False, height=320, elem_id="mp4")
                strip = gr.Gallery(
                    label="Frames", columns=8, height=250, format="png", elem_id="strip"
                )
                downloads = gr.File(
                    label="Downloads", file_count="multiple", interactive=False, elem_id="files"
                )
        go.click(
            on_animate,
            inputs=[photo, model, frames, peak, curve, auto_crop, fps],
            outputs=[gif, video, strip, downloads, status],
            api_name="animate",
            preprocess=False,
        )
        refresh.click(
            on_refresh,
            inputs=[model],
            outputs=[model, notice],
            api_name="refresh",
            preprocess=False,  # a model deleted since the page loaded is no error here
        )
    app.queue(default_concurrency_limit=1, max_size=32)  # CPU-bound: wait in line, bounded
    return app


_SERVER_FOLDER: Path | None = None


def _server_folder() -> Path:
    """A private temp folder for this process's server, the same one every time.

    Gradio reads ``GRADIO_TEMP_DIR`` partly when it is imported, so the folder must exist, and
    be named there, before Gradio's first import (hence Gradio is imported only by this module,
    after that), and it must stay the same folder for later servers of the same process.
    """
    global _SERVER_FOLDER
    if _SERVER_FOLDER is None:
        _SERVER_FOLDER = Path(tempfile.mkdtemp(prefix="affinegan-serve-"))
    else:
        _SERVER_FOLDER.mkdir(mode=0o700)  # the previous server removed it
    return _SERVER_FOLDER


@contextmanager
def serving(
    checkpoints_dir: Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    limits: Limits = Limits(),
    gpu_ids: str = "-1",
) -> Iterator[str]:
    """Run the demo in a background thread; yield its URL; then stop it and delete its files.

    Uploads, Gradio's cache, results and examples all go to the process's server folder
    (``GRADIO_TEMP_DIR`` points inside it while serving), which is removed on the way out.
    One server at a time per process.
    """
    work_dir = _server_folder()
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(work_dir / "gradio")
    try:
        animator = Animator(checkpoints_dir, work_dir / "results", limits, resolve_device(gpu_ids))
        app = build_app(animator, write_examples(work_dir / "examples"))
        try:
            _, url, _ = app.launch(
                server_name=host,
                server_port=port,
                prevent_thread_lock=True,
                quiet=True,
                share=False,
                ssr_mode=False,
                mcp_server=False,
                pwa=False,
                run_history=False,
                enable_monitoring=False,
                max_file_size=limits.max_bytes,
                allowed_paths=[str(work_dir)],
                footer_links=["api", "settings"],
                css=_CSS,
            )
        except OSError as err:
            raise AffineGANError(
                f"cannot serve on {host}:{port} ({err}); try another --port"
            ) from None
        try:
            yield url
        finally:
            app.close()
    finally:
        if previous is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = previous
        shutil.rmtree(work_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Serve the web demo until Ctrl-C (or SIGTERM), then remove every file it wrote."""
    p = argparse.ArgumentParser(
        prog="affinegan serve",
        description="Web demo: turn a face photo into an expression video in the browser.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoints_dir", default="./checkpoints", help="folder of trained runs")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: the network)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest photo accepted")
    p.add_argument("--max-megapixels", type=float, default=16.0, help="largest photo accepted")
    p.add_argument("--max-frames", type=int, default=120, help="longest clip a request may ask")
    p.add_argument("--gpu_ids", default="-1", help="GPU to generate on; -1 for the CPU")
    p.add_argument("--torch_threads", type=int, default=0, help=TORCH_THREADS_HELP)
    a = p.parse_args(argv)
    if min(a.max_upload_mb, a.max_megapixels, a.max_frames) <= 0:
        p.error("--max-upload-mb, --max-megapixels and --max-frames must be positive")
    limits = Limits(
        max_bytes=int(a.max_upload_mb * 2**20),
        max_pixels=int(a.max_megapixels * 1e6),
        max_frames=a.max_frames,
    )
    thread_policy(a.torch_threads)
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this address can use the demo", a.host)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serving(Path(a.checkpoints_dir), a.host, a.port, limits, a.gpu_ids) as url:
        print(f"AffineGAN demo on {url} (Ctrl-C to stop)", flush=True)
        with suppress(KeyboardInterrupt):
            stop.wait()
    return 0
