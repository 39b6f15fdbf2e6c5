"""Generation from exported ONNX graphs with onnxruntime: numpy, PIL and onnxruntime only.

This module never imports torch (a test runs it with torch made unimportable), so a machine
with ``pip install onnxruntime pillow numpy imageio-ffmpeg`` and the folder ``affinegan export``
wrote can animate faces. Pixels are prepared exactly as :mod:`affinegan.data.images` does.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from affinegan.config import GenerateConfig
from affinegan.data.images import load_rgb, megapixels
from affinegan.errors import AffineGANError
from affinegan.export.manifest import check_graphs_match, read_manifest
from affinegan.files import writable_folder
from affinegan.generation.expressions import Plan, plan
from affinegan.generation.html import write_image_table
from affinegan.generation.results import input_photos, resolve_alphas, write_face
from affinegan.generation.video import parse_formats
from affinegan.layout import EXPORT_DIR, INDEX, MANIFEST, results_folder
from affinegan.options import DEFAULT_MAX_MEGAPIXELS, validate

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def require(module: str, extra: str = "export") -> ModuleType:
    """Import an optional dependency, or say in one line how to install it. A Ctrl-C during the
    import stays an interrupt (a C extension can report it as an ImportError), and a module
    that is installed but broken is not called missing."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        cause: BaseException | None = err
        while cause is not None:
            if isinstance(cause, KeyboardInterrupt):
                raise KeyboardInterrupt from None
            cause = cause.__cause__ or cause.__context__
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            raise AffineGANError(f"{module} is installed but fails to import ({err})") from None
        raise AffineGANError(f"this needs {module}: pip install 'affinegan[{extra}]'") from None


def open_session(path: Path, threads: int = 0) -> Any:
    """An onnxruntime CPU session for one graph (``threads`` 0: onnxruntime's choice), or a
    one-line error saying what is missing or broken."""
    ort = require("onnxruntime")
    if not Path(path).is_file():
        raise AffineGANError(f"{path}: graph not found; run `affinegan export` first")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime's error types are not public
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise AffineGANError(
            f"{path}: not a readable ONNX graph ({reason}); export the model again"
        ) from None


def run_encode(sess: Any, x: np.ndarray) -> list[np.ndarray]:
    """One face (1,3,S,S) in [-1, 1] -> its codes, in the graph's output order."""
    return sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})


def run_decode(sess: Any, codes: list[np.ndarray], alphas: np.ndarray) -> np.ndarray:
    """Codes of one face and alphas (N,E) -> frames (N,3,S,S) in [-1, 1]."""
    names = [i.name for i in sess.get_inputs()]
    feeds = dict(zip(names, [np.asarray(alphas, np.float32), *codes], strict=True))
    return sess.run(None, feeds)[0]


def frames_to_uint8(y: np.ndarray) -> np.ndarray:
    """(N,3,H,W) in [-1, 1] -> (N,H,W,3) uint8, rounded as ``tensor_to_uint8`` rounds."""
    x = (np.asarray(y, np.float32) + 1) / 2 * 255
    return np.rint(np.clip(x, 0, 255)).astype(np.uint8).transpose(0, 2, 3, 1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of uint8 images ``a`` against ``b`` (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def load_face(
    path: Path, size: int, max_pixels: int = megapixels(DEFAULT_MAX_MEGAPIXELS)
) -> np.ndarray:
    """The generator's input (1,3,S,S) float32 in [-1, 1]: RGB, bicubic ``size x size``, by
    the loader of every command (``affinegan.data.images``, which needs no torch)."""
    rgb = load_rgb(path, size, max_pixels)
    return (np.asarray(rgb).astype(np.float32) / 255 * 2 - 1).transpose(2, 0, 1)[None]


@dataclass
class OnnxGenerator:
    """The two graphs of an export and what ``model.json`` says about them."""

    manifest: dict[str, Any]
    encoder: Any
    decoder: Any

    @classmethod
    def load(cls, model_dir: Path, variant: str = "fp32") -> OnnxGenerator:
        """Open ``model_dir/model.json`` and one variant's graphs, each checked against the
        other (``affinegan.manifest``)."""
        manifest, files = read_manifest(Path(model_dir), variant)
        gen = cls(manifest, open_session(files["encode"]), open_session(files["decode"]))
        where = Path(model_dir) / MANIFEST
        check_graphs_match(where, gen.encoder, gen.decoder, gen.size, len(manifest["expressions"]))
        return gen

    @property
    def size(self) -> int:
        return int(self.manifest["image_size"])

    def encode(self, x: np.ndarray) -> list[np.ndarray]:
        return run_encode(self.encoder, x)

    def decode(
        self,
        codes: list[np.ndarray],
        alphas: list[float],
        chunk: int = 32,
        plan: Plan | None = None,
    ) -> np.ndarray:
        """Frames (N,H,W,3) uint8 at the given intensities (of the first expression, or as
        ``plan`` says: ``--expression`` / ``--mix``), ``chunk`` per decoder call."""
        e = len(self.manifest["expressions"])
        a = (plan or Plan([0], np.asarray(alphas, np.float32)[:, None])).table(e)
        parts = [run_decode(self.decoder, codes, a[i : i + chunk]) for i in range(0, len(a), chunk)]
        return frames_to_uint8(np.concatenate(parts))

    def animate(
        self, x: np.ndarray, alphas: list[float], chunk: int = 32, plan: Plan | None = None
    ) -> np.ndarray:
        return self.decode(self.encode(x), alphas, chunk, plan)


def first_frames(root: Path, phase: str) -> list[tuple[str, Path]]:
    """(clip, first frame) of every clip under ``root/phase/img``, named and sorted as
    ``scan_clips`` sorts them; hidden files and non-images skipped."""
    img_dir = Path(root) / phase / "img"
    if not img_dir.is_dir():
        raise AffineGANError(f"{img_dir}: folder not found; expected {root}/{phase}/img/<clip>/")
    out = []
    for d in sorted(p for p in img_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        frames = sorted(
            f.name
            for f in d.iterdir()
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
        )
        if frames:
            out.append((d.name, d / frames[0]))
    if not out:
        raise AffineGANError(f"{img_dir}: no clip folders with frames")
    return out


def _results_name(cfg: GenerateConfig, exported: str, model_dir: Path) -> str:
    """The name results are filed under: the exported model's, so another model's export given
    with --onnx_dir never files its frames under --name; a --name that differs is refused."""
    if cfg.name in (exported, GenerateConfig.name):  # GenerateConfig.name: the flag's default
        return exported
    raise AffineGANError(
        f"--name {cfg.name}: the export in {model_dir} is of model {exported!r}; "
        f"pass --name {exported} (or leave --name out with --onnx_dir)"
    )


def generate_onnx(
    cfg: GenerateConfig, model_dir: Path | None = None, variant: str = "fp32"
) -> Path:
    """``affinegan generate --backend onnxruntime``: the outputs of ``generate`` from the
    exported graphs (default ``<checkpoints_dir>/<name>/onnx``)."""
    if cfg.align:
        raise AffineGANError("--align needs the PyTorch backend (face detection); crop first")
    if cfg.dropout:
        raise AffineGANError("--dropout needs the PyTorch backend; exported graphs are eval mode")
    validate(cfg)  # also when called without the command line
    formats = parse_formats(cfg.format)
    alphas = resolve_alphas(cfg)
    inputs = input_photos(cfg, first_frames)
    model_dir = model_dir or Path(cfg.checkpoints_dir) / cfg.name / EXPORT_DIR
    gen = OnnxGenerator.load(model_dir, variant)
    size = cfg.fineSize or gen.size
    if size != gen.size:
        raise AffineGANError(f"--fineSize {size}: the graphs were exported at {gen.size} px")
    names = gen.manifest["expressions"]
    video = plan(names if len(names) > 1 else [], cfg.expression, cfg.mix, alphas)
    name = _results_name(cfg, gen.manifest["name"], model_dir)
    out_dir = writable_folder(
        results_folder(cfg.results_dir, name, cfg.phase, cfg.epoch), "--results_dir"
    )
    rows = []
    for clip, path in inputs:
        x = load_face(path, size, megapixels(cfg.max_megapixels))
        frames = gen.animate(x, alphas, cfg.chunk, video)
        rows.append(
            (
                clip,
                write_face(out_dir, clip, frames_to_uint8(x)[0], frames, alphas, formats, cfg.fps),
            )
        )
    title = f"{name}: {cfg.phase}_{cfg.epoch} (onnxruntime)"
    write_image_table(out_dir / INDEX, title, rows)
    log.info("wrote %d videos of %d frames to %s (onnxruntime)", len(inputs), len(alphas), out_dir)
    return out_dir
