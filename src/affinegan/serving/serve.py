"""``affinegan serve``: the core of the browser demo, one face photo -> an expression video.

It follows the inference road of ``generate.py`` (photo -> encode once -> decode a batch of
alphas, paper Eq. 1: ``z_b + alpha * z_r``) and keeps the encoding of each (model, photo,
auto-crop) triple in an LRU cache, so trying other frame counts or curves on the same photo only
costs the decoder. ``Animator`` is that core without any web code; ``serve_page.py`` puts a
Gradio page on it and runs it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from affinegan import checkpoint as ckpt
from affinegan.cli.command_options import DEMO_ZOOM, ServeOptions
from affinegan.core.networks import Encoding
from affinegan.data.cartoon import render_face
from affinegan.data.images import decode, image_to_tensor
from affinegan.errors import AffineGANError
from affinegan.generation.curves import alpha_curve
from affinegan.generation.expressions import plan
from affinegan.generation.generate import (
    LoadedModel,
    decode_frames,
    encode_all,
    load_generator,
    set_mode,
)
from affinegan.generation.pasteback import Placement, paste, place, with_still
from affinegan.generation.results import gif_frames
from affinegan.generation.video import write_gif, write_mp4
from affinegan.layout import generator_file
from affinegan.shipped import shipped_models

log = logging.getLogger(__name__)

PAGE_SIDE = 1024  # the page's pasted-back clips are at most this large
MODEL_FILE = generator_file()  # a folder holding it is a run the page offers
EXAMPLE_SEEDS = (1, 2, 3, 6)  # synthetic identities shown as example faces
TRAIN_HINT = (
    "train one first: `affinegan demo` (a small CPU model, a few minutes; then serve "
    "`--checkpoints_dir demo_out/checkpoints`) or `python train.py --dataroot DATA --name NAME "
    "--checkpoints_dir {checkpoints_dir}`, then press Refresh model list"
)
_DECODE_CHUNK = 32  # alphas decoded per forward pass: bounds memory for long clips
_KEEP_RESULTS = 32  # result folders kept on disk; Gradio has its own copy of what it shows


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, so that no upload or setting can exhaust memory or disk;
    ``affinegan serve``'s flags by default."""

    max_bytes: int = int(ServeOptions.max_upload_mb * 2**20)
    max_pixels: int = int(ServeOptions.max_megapixels * 1e6)
    max_frames: int = ServeOptions.max_frames

    @classmethod
    def of(cls, opts: ServeOptions) -> Limits:
        return cls(int(opts.max_upload_mb * 2**20), int(opts.max_megapixels * 1e6), opts.max_frames)


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class ModelInfo:
    """A trained run the page offers: ``name`` (its folder under the checkpoints folder) is the
    only thing a client sends back, so requests can never point at other files."""

    name: str
    run_dir: Path
    size: int  # the square size it was trained at
    mtime: float  # of its generator weights: when it was (last) trained
    expressions: tuple[str, ...] = ()  # a multi-expression model's, which "mix" can name

    @property
    def label(self) -> str:
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.mtime))
        names = f"{', '.join(self.expressions)}; " if len(self.expressions) > 1 else ""
        return f"{self.name} ({names}{self.size} px, trained {date})"


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
    """The size the run works at (``checkpoint.training_size``), without loading its weights
    when its saved config says."""
    config = ckpt.read_config(run_dir) or {}
    if config.get("fineSize"):
        return int(config["fineSize"])
    sd = ckpt.load_weights(ckpt.generator_weights(Path(run_dir), "latest"))
    return ckpt.training_size(config, ckpt.infer_generator_options(sd)["netG"])


def _model_info(name: str, run_dir: Path) -> ModelInfo:
    weights = ckpt.generator_weights(run_dir, "latest")
    names = str((ckpt.read_config(run_dir) or {}).get("expressions", "")).split(",")
    size = training_size(run_dir)
    return ModelInfo(name, run_dir, size, weights.stat().st_mtime, tuple(n for n in names if n))


def find_models(checkpoints_dir: Path) -> list[ModelInfo]:
    """Every folder under ``checkpoints_dir`` holding ``latest_net_G.pth``, newest first."""
    root = Path(checkpoints_dir)
    models = []
    for weights in sorted(root.rglob(MODEL_FILE)) if root.is_dir() else []:
        run_dir = weights.parent
        name = run_dir.relative_to(root).as_posix() if run_dir != root else root.name
        try:
            models.append(_model_info(name, run_dir))
        except AffineGANError as err:
            log.warning("skipping model %s: %s", run_dir, err)
    return sorted(models, key=lambda m: m.mtime, reverse=True)


def offered_models(checkpoints_dir: Path) -> list[ModelInfo]:
    """What the page offers: the runs under ``checkpoints_dir`` (``find_models``), then the
    models shipped with the package (by name), so a server with no runs of its own still
    animates photos."""
    models = find_models(checkpoints_dir)
    taken = {m.name for m in models}
    return models + [_model_info(n, d) for n, d in shipped_models().items() if n not in taken]


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


def pasted_into(img: Image.Image, size: int) -> Placement:
    """With face auto-crop, the page animates the face inside the photo (paste-back), the
    photo first scaled to at most ``PAGE_SIDE`` on its longer side: a demo clip needs no more,
    and a long clip of a 16-megapixel photo would not fit in memory."""
    scale = PAGE_SIDE / max(img.size)
    if scale < 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
    return place(np.asarray(img.convert("RGB")), size, "the photo")


def model_input(img: Image.Image, size: int, auto_crop: bool) -> Image.Image:
    """What the generator sees: the face crop, or the whole photo, at ``size x size`` bicubic
    (aspect ignored, as in ``affinegan generate``)."""
    if auto_crop:
        try:
            from affinegan.data.align import crop_to_face
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
        limits: Limits = DEFAULT_LIMITS,
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
        self.models = offered_models(self.checkpoints_dir)
        self._generators: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._encodings: OrderedDict[tuple[str, int, str, bool], Encoding] = OrderedDict()
        self._requests = 0
        self._lock = threading.Lock()  # Gradio calls from worker threads; one model at a time

    def refresh(self) -> list[ModelInfo]:
        """Rescan the checkpoints folder (for models trained while the server runs)."""
        self.models = offered_models(self.checkpoints_dir)
        return self.models

    def model(self, name: str | None) -> ModelInfo:
        """The model called ``name``; none named: the first listed (newest run, else shipped)."""
        for info in self.models:
            if info.name == name or (not name and info is self.models[0]):
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
        mix: str = "",
    ) -> Animation:
        """Encode the photo once (or reuse its encoding) and decode one frame per alpha; a
        multi-expression model animates its first expression, or ``mix`` (``smile=1,blink=0.6``:
        each listed expression on the curve to its own peak)."""
        t0 = time.perf_counter()
        if not 1 <= num_frames <= self.limits.max_frames:
            raise AffineGANError(f"frames must be between 1 and {self.limits.max_frames}")
        if not 0 < fps <= 50:
            raise AffineGANError(f"frames per second must be in (0, 50], got {fps}")
        alphas = alpha_curve(curve, num_frames, peak)  # checks the peak (check_intensity)
        info = self.model(model)
        img, digest = read_photo(photo, self.limits)
        with self._lock:
            loaded, (enc, placement), reused = self._model_and_encoding(
                info, img, digest, auto_crop
            )
            video = plan(loaded.expressions, "", mix, alphas)
            if placement is not None:  # the alpha-0 frame the pasted changes start from
                video = with_still(video)
            multi = loaded.G.expressions > 1
            table = video.table(loaded.G.expressions) if multi else video.weights[:, 0]
            frames = decode_frames(loaded.G, enc, table, _DECODE_CHUNK)
            self._requests += 1
            folder = self.out_dir / f"{self._requests:06d}"
        if placement is not None:
            frames = np.stack([paste(placement, f, frames[-1]) for f in frames[:-1]])
        stem = f"{info.name.replace('/', '_')}_{curve}"
        gif = write_gif(gif_frames(frames), folder / f"{stem}.gif", fps)
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

    def _model_and_encoding(
        self, info: ModelInfo, img: Image.Image, digest: str, auto_crop: bool
    ) -> tuple[LoadedModel, tuple[Encoding, Placement | None], bool]:
        """The model's generator and the photo's encoding, from the caches when the weights'
        mtime and the photo's digest still match (and whether the encoding was reused). The
        caller holds ``self._lock``: the caches and the device are shared between requests."""
        weights = ckpt.generator_weights(info.run_dir, "latest")
        try:
            stamp = weights.stat().st_mtime_ns
        except FileNotFoundError:
            raise AffineGANError(f"model {info.name} was deleted: refresh the list") from None
        try:
            loaded = self._generator(info.run_dir, stamp)
        except AffineGANError as err:  # its paths are the server's: the log has them
            log.error("model %s: %s", info.name, err)
            raise AffineGANError(
                f"model {info.name} cannot be loaded; the server's log says why"
            ) from None
        key = (str(info.run_dir), stamp, digest, auto_crop)
        cached = self._encodings.get(key)
        reused = cached is not None
        if reused:
            self._encodings.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
            placement = pasted_into(img, loaded.size) if auto_crop else None
            face = model_input(img, loaded.size, False) if placement is None else placement.crop
            x = image_to_tensor(Image.fromarray(np.asarray(face))).to(self.device)
            with torch.inference_mode():
                enc = encode_all(loaded.G, x[None])  # every expression: any mix reuses it
            cached = (enc, placement)
            self._remember(self._encodings, key, cached)
        return loaded, cached, reused

    def _generator(self, run_dir: Path, stamp: int) -> LoadedModel:
        key = (str(run_dir), stamp)
        loaded = self._generators.get(key)
        if loaded is None:
            loaded = load_generator(run_dir, "latest", size=training_size(run_dir))
            loaded.G.to(self.device)
            set_mode(loaded.G, dropout=False)
            self._remember(self._generators, key, loaded, limit=2)
        else:
            self._generators.move_to_end(key)
        return loaded

    def _remember(self, cache: OrderedDict, key: Any, value: Any, limit: int = 0) -> None:
        cache[key] = value
        while len(cache) > (limit or self.cache_size):
            cache.popitem(last=False)

    def _prune(self) -> None:
        folders = sorted(p for p in self.out_dir.iterdir() if p.is_dir())
        for old in folders[:-_KEEP_RESULTS]:
            shutil.rmtree(old, ignore_errors=True)


def write_examples(folder: Path, size: int = 256) -> list[Path]:
    """Neutral synthetic faces for the example gallery (never real people's photos), framed
    like the faces ``affinegan demo`` trains on."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in EXAMPLE_SEEDS:
        path = folder / f"synthetic_face_{seed}.png"
        Image.fromarray(render_face(seed, "smile", 0.0, size, zoom=DEMO_ZOOM)[0]).save(path)
        paths.append(path)
    return paths
