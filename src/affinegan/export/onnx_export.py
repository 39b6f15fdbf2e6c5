"""``affinegan export``: the generator as two ONNX graphs, checked against PyTorch.

``encode(image) -> codes`` runs once per photo and ``decode(codes, alpha) -> frames`` once per
batch of intensities, the same split as ``Generator.encode`` / ``Generator.decode``, so a runtime
without PyTorch (onnxruntime on a server, onnxruntime-web in a browser) animates a face at the
cost of one decoder pass per frame. The graphs wrap the public encode/decode methods, so whatever
the generator computes, the graphs compute. ``model.json`` beside them says how to feed them
(read by :mod:`affinegan.export.onnx_runtime` and the web page).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from affinegan.core.networks import Encoding, Generator
from affinegan.errors import AffineGANError
from affinegan.export.manifest import FORMAT_VERSION, graph_file
from affinegan.export.onnx_runtime import (
    frames_to_uint8,
    open_session,
    psnr,
    require,
    run_decode,
    run_encode,
)
from affinegan.files import atomic_folder, check_replaceable
from affinegan.generation.generate import encode_all, load_generator, set_mode
from affinegan.layout import MANIFEST

log = logging.getLogger(__name__)

OPSET = 18  # >= 16 for GridSample; onnxruntime-web 1.30 runs it
TOLERANCE = 1e-4  # largest |onnxruntime - PyTorch| accepted in float32, in [-1, 1] units
VARIANTS = ("fp16", "int8")
WEB_MARKER = f"model/{MANIFEST}"  # what marks a folder as a page export wrote
WEB_ASSETS = Path(__file__).with_name("web")
# What the page needs from the npm packages pinned by web/package-lock.json (the versions again
# here, for installs without the repository's web/ folder; a test keeps them equal).
NPM_PACKAGES = {"onnxruntime-web": "1.30.0", "gifenc": "1.0.3"}
NPM_FILES = {
    "onnxruntime-web/dist/ort.wasm.min.mjs": "ort/ort.wasm.min.mjs",
    "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs": "ort/ort-wasm-simd-threaded.mjs",
    "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm": "ort/ort-wasm-simd-threaded.wasm",
    "gifenc/dist/gifenc.esm.js": "gifenc.esm.js",
}


def code_names(enc: Encoding) -> list[str]:
    """Names of the encode graph's outputs (= decode inputs after ``alpha``), in
    ``Encoding.tensors()`` order, then the image a ``--blend`` generator blends with."""
    if enc.skips_res is None or enc.bottom_res is None:
        raise ValueError("export needs an encoding with its residual stream")
    names = [f"skip_base_{i}" for i in range(len(enc.skips_base))] + ["bottom_base"]
    names += [f"skip_res_{i}" for i in range(len(enc.skips_res))] + ["bottom_res"]
    return names + (["image"] if enc.image is not None else [])


def _unflatten(codes: Sequence[torch.Tensor], n_skips: int, has_image: bool) -> Encoding:
    """The inverse of ``Encoding.tensors()`` (+ image)."""
    k = n_skips
    return Encoding(
        list(codes[:k]),
        list(codes[k + 1 : 2 * k + 1]),
        codes[k],
        codes[2 * k + 1],
        codes[2 * k + 2] if has_image else None,
    )


class EncodeGraph(nn.Module):
    """image (1,3,S,S) in [-1, 1] -> every code of both streams (+ the image for --blend)."""

    def __init__(self, G: Generator) -> None:
        super().__init__()
        self.G = G

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        enc = encode_all(self.G, image)
        return (*enc.tensors(), *([enc.image] if enc.image is not None else []))


class DecodeGraph(nn.Module):
    """(alpha (N,E), codes of one face) -> N frames (N,3,S,S) in [-1, 1].

    E is the number of expressions; frame i is decoded at ``b = 1, t = alpha[i, 0]`` (one
    expression) or at ``z_b + sum_e alpha[i, e] z_r,e`` (several), the paths of ``affinegan
    generate``.
    """

    def __init__(self, G: Generator, n_skips: int, has_image: bool) -> None:
        super().__init__()
        self.G, self.n_skips, self.has_image = G, n_skips, has_image

    def forward(self, alpha: torch.Tensor, codes: list[torch.Tensor]) -> torch.Tensor:
        enc = _unflatten(codes, self.n_skips, self.has_image)
        if enc.image is not None:  # one row per frame: a traced repeat count would be constant
            enc.image = enc.image.expand(alpha.shape[0], -1, -1, -1)
        out = self.G.decode(enc, 1.0, alpha[:, 0] if self.G.expressions == 1 else alpha)
        assert torch.is_tensor(out)
        return out


@dataclass
class ExportReport:
    """What ``export`` wrote and measured."""

    out_dir: Path
    seconds: float
    max_diff: dict[str, float]  # check name -> largest |onnxruntime - PyTorch|
    sizes: dict[str, int]  # variant -> bytes of encode + decode
    psnr: dict[str, float] = field(default_factory=dict)  # variant -> dB against fp32
    web_dir: Path | None = None
    face: str = ""  # the photo the graphs were checked on


@contextlib.contextmanager
def _quiet():
    """The exporter's progress lines and warnings, out of the user's way (logged at debug)."""
    buf = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(buf),
        contextlib.redirect_stderr(buf),
    ):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)  # onnxruntime's quantiser logs advice to the root
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)
    log.debug("%s", buf.getvalue())


def _onnx_export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    names: tuple[list[str], list[str]],
    dynamic: dict[str, dict[int, str]] | None = None,
) -> None:
    """torch.onnx.export with the TorchScript tracer. Not the dynamo exporter: ``_mix`` keeps
    frame counts in Python sets, which torch.export cannot keep symbolic, so its graphs would
    decode a fixed number of frames. Tracing records the same tensor ops with a free frame axis;
    ``check_graphs`` then proves the graph at frame counts other than the traced one."""
    require("onnx")
    with _quiet():
        torch.onnx.export(
            module.eval(),
            args,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=names[0],
            output_names=names[1],
            dynamic_axes=dynamic,
        )


def ramp(frames: int, expressions: int) -> np.ndarray:
    """(frames, E) intensities rising from 0, expression e to 1 / (e + 1): distinct columns, so
    checks and calibration see mixes too."""
    column = np.linspace(0, 1, frames, dtype=np.float32)[:, None]
    return column / np.arange(1, expressions + 1, dtype=np.float32)[None]


def _torch_frames(G: Generator, x: torch.Tensor, alphas: np.ndarray) -> tuple[list, np.ndarray]:
    with torch.inference_mode():
        enc = encode_all(G, x)
        codes = [*enc.tensors(), *([enc.image] if enc.image is not None else [])]
        table = torch.from_numpy(alphas)
        out = G.decode(enc, 1.0, table[:, 0] if G.expressions == 1 else table)
    return [c.numpy() for c in codes], out.numpy()


def check_graphs(
    G: Generator, enc_path: Path, dec_path: Path, face: np.ndarray, seed: int = 0
) -> dict[str, float]:
    """Largest |onnxruntime - PyTorch| of the codes and frames of a face and of random inputs."""
    s = face.shape[-1]
    rng = np.random.default_rng(seed)
    cases = {
        "face": (face, ramp(5, G.expressions)),
        "random": (
            rng.uniform(-1, 1, (1, 3, s, s)).astype(np.float32),
            rng.uniform(-0.5, 1.5, (2, G.expressions)).astype(np.float32),
        ),
    }
    sess_e, sess_d = open_session(enc_path), open_session(dec_path)
    diffs = {}
    for name, (x, alphas) in cases.items():
        ref_codes, ref = _torch_frames(G, torch.from_numpy(x), alphas)
        codes = run_encode(sess_e, x)
        frames = run_decode(sess_d, codes, alphas)
        diffs[f"{name} codes"] = max(
            float(np.abs(a - b).max()) for a, b in zip(codes, ref_codes, strict=True)
        )
        diffs[f"{name} frames"] = float(np.abs(frames - ref).max())
    return diffs


def _calibration(enc_sess, face: np.ndarray, expressions: int, seed: int = 0) -> tuple[list, list]:
    """Feeds for int8 calibration: the face and noisy copies, and their codes at a few alphas."""
    rng = np.random.default_rng(seed)
    images = [face] + [
        np.clip(face + rng.normal(0, 0.1, face.shape), -1, 1).astype(np.float32) for _ in range(3)
    ]
    enc_in = enc_sess.get_inputs()[0].name
    codes = [run_encode(enc_sess, x) for x in images]
    alphas = ramp(4, expressions)
    return [{enc_in: x} for x in images], [(c, alphas) for c in codes]


def _make_variant(kind: str, src: Path, dst: Path, feeds: list) -> None:
    """fp16 (weights and arithmetic, float32 inputs/outputs kept) or int8 (static QDQ
    quantisation calibrated on ``feeds``) with onnxruntime's own tools."""
    import onnx

    if kind == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        with _quiet():
            model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
        onnx.save(model, str(dst))
        return
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.it, None)

    with _quiet():
        quantize_static(
            str(src),
            str(dst),
            Reader(),
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
        )


def _decode_feeds(dec_sess, pairs: list) -> list[dict]:
    names = [i.name for i in dec_sess.get_inputs()]
    return [dict(zip(names, [alphas, *codes], strict=True)) for codes, alphas in pairs]


def default_face(
    size: int, path: Path | None = None, run_dir: Path | None = None
) -> tuple[np.ndarray, str]:
    """The face the export checks on, and where it came from: ``path`` (resized as generation
    resizes), else the first test face of the dataset the run was trained on, else a synthetic
    face."""
    from affinegan import checkpoint as ckpt
    from affinegan.export.onnx_runtime import first_frames, load_face

    if path is None and run_dir is not None:
        root = (ckpt.read_config(run_dir) or {}).get("dataroot")
        with contextlib.suppress(AffineGANError, OSError):
            path = first_frames(Path(root), "test")[0][1] if root else None
    if path is not None:  # by name only: model.json is published, local paths are not
        return load_face(Path(path), size), Path(path).name
    from affinegan.data.cartoon import render_face

    rgb = render_face(3, "smile", 0.0, size)[0]
    return (rgb.astype(np.float32) / 255 * 2 - 1).transpose(2, 0, 1)[None], "a synthetic face"


def export_graphs(
    G: Generator, x: torch.Tensor, out_dir: Path
) -> tuple[dict[str, Path], list[str], dict[str, float]]:
    """``out_dir``/encode.onnx and decode.onnx of ``G`` (in eval mode), traced on the face ``x``
    (1,3,S,S) and checked against PyTorch; their paths, the code names, the differences."""
    with torch.inference_mode():
        enc = encode_all(G, x)
    names = code_names(enc)
    n_skips, has_image = len(enc.skips_base), enc.image is not None
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"encode": out_dir / "encode.onnx", "decode": out_dir / "decode.onnx"}
    _onnx_export(EncodeGraph(G), (x,), paths["encode"], (["input"], names))
    alphas = torch.linspace(0.0, 1.0, 3 * G.expressions).reshape(3, G.expressions)
    _onnx_export(
        DecodeGraph(G, n_skips, has_image),
        (alphas, [t.clone() for t in [*enc.tensors(), *([enc.image] if has_image else [])]]),
        paths["decode"],
        (["alpha", *names], ["frames"]),
        {"alpha": {0: "frames"}, "frames": {0: "frames"}},
    )
    diffs = check_graphs(G, paths["encode"], paths["decode"], x.numpy())
    worst = max(diffs.values())
    if not worst <= TOLERANCE:
        raise AffineGANError(
            f"the ONNX graphs differ from PyTorch by {worst:.2e} (> {TOLERANCE:g}): "
            + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())
        )
    return paths, names, diffs


def _write_variants(
    paths: dict[str, Path], variants: Sequence[str], x: torch.Tensor, count: int, out_dir: Path
) -> tuple[dict[str, dict[str, Path]], dict[str, int], dict[str, float]]:
    """The graph files of fp32 and each variant, their bytes, and each variant's PSNR against
    fp32: a variant is calibrated on the face the export checks on and measured on it, so
    model.json states what the smaller file costs."""
    files = {"fp32": paths}
    for v in variants:
        files[v] = {k: out_dir / f"{k}.{v}.onnx" for k in paths}
    sizes = {v: sum(p.stat().st_size for p in f.values()) for v, f in files.items() if v == "fp32"}
    psnrs: dict[str, float] = {}
    if variants:
        enc_sess = open_session(paths["encode"])
        enc_feeds, dec_pairs = _calibration(enc_sess, x.numpy(), count)
        dec_feeds = _decode_feeds(open_session(paths["decode"]), dec_pairs)
        ref = frames_to_uint8(_variant_frames(paths, x.numpy()))
        for v in variants:
            _make_variant(v, paths["encode"], files[v]["encode"], enc_feeds)
            _make_variant(v, paths["decode"], files[v]["decode"], dec_feeds)
            sizes[v] = sum(p.stat().st_size for p in files[v].values())
            psnrs[v] = psnr(frames_to_uint8(_variant_frames(files[v], x.numpy())), ref)
    return files, sizes, psnrs


def _manifest(
    report: ExportReport,
    files: dict[str, dict[str, Path]],
    name: str,
    image_size: int,
    expressions: list[str],
    names: list[str],
) -> dict:
    """model.json: all a runtime without PyTorch needs to feed the graphs (sizes, normalisation,
    the alpha layout, the code names, the files) and how closely they were checked."""
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "image_size": image_size,
        "channels": 3,
        "layout": "NCHW RGB float32",
        "normalisation": {
            "input": "x / 255 * 2 - 1 (uint8 -> [-1, 1]); the photo is resized to image_size "
            "x image_size, bicubic, aspect ignored",
            "output": "round(clip((y + 1) / 2 * 255, 0, 255))",
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
        },
        "expressions": expressions,
        "alpha": "decode input 'alpha' is (frames, len(expressions)); frame i is decoded at "
        "z_b + sum_e alpha[i, e] z_r,e: expression e at intensity alpha[i, e]",
        "encode": {"inputs": ["input"], "outputs": names},
        "decode": {"inputs": ["alpha", *names], "outputs": ["frames"]},
        "variants": {
            v: {
                "encode": f["encode"].name,
                "decode": f["decode"].name,
                "bytes": report.sizes[v],
                **({"psnr_db_vs_fp32": round(report.psnr[v], 2)} if v in report.psnr else {}),
            }
            for v, f in files.items()
        },
        "max_abs_diff_vs_pytorch": {k: float(f"{v:.3g}") for k, v in report.max_diff.items()},
        "checked_on": report.face,
        "opset": OPSET,
    }


def export(
    run_dir: Path,
    out_dir: Path,
    epoch: str = "latest",
    face: Path | None = None,
    variants: Sequence[str] = (),
    expressions: Sequence[str] | None = None,
    web_dir: Path | None = None,
    node_modules: Path | None = None,
) -> ExportReport:
    """Write encode.onnx, decode.onnx (+ variants) and model.json for the run in ``run_dir``."""
    t0 = time.perf_counter()
    for v in variants:
        if v not in VARIANTS:
            raise AffineGANError(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    check_replaceable(out_dir, MANIFEST, "--out")
    if web_dir is not None:
        node_modules = _check_npm_files(node_modules)
        check_replaceable(web_dir, WEB_MARKER, "--web")
        web, out = Path(web_dir).resolve(), Path(out_dir).resolve()
        if web.is_relative_to(out) or out.is_relative_to(web):  # each is replaced whole
            raise AffineGANError(f"--web {web_dir}: choose a folder apart from --out {out_dir}")
    model = load_generator(run_dir, epoch)
    count = model.G.expressions
    if expressions is not None and len(expressions) != count:
        has = "one expression" if count == 1 else f"{count} expressions"
        raise AffineGANError(
            f"--expressions: {len(expressions)} names, but this generator has {has}"
        )
    expressions = list(expressions or model.expressions or [run_dir.name])
    G = model.G.cpu()
    set_mode(G, dropout=False)
    face_x, face_name = default_face(model.size, face, run_dir)
    x = torch.from_numpy(face_x)
    with atomic_folder(out_dir, MANIFEST, "--out") as tmp:
        paths, names, diffs = export_graphs(G, x, tmp)
        files, sizes, psnrs = _write_variants(paths, variants, x, count, tmp)
        report = ExportReport(out_dir, 0.0, diffs, sizes, psnrs, face=face_name)
        manifest = _manifest(report, files, run_dir.name, model.size, expressions, names)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if web_dir is not None:
            report.web_dir = write_web(tmp, web_dir, node_modules)
    report.seconds = time.perf_counter() - t0
    return report


def _variant_frames(paths: dict[str, Path], x: np.ndarray) -> np.ndarray:
    """A 9-frame video of ``x`` (alpha 0 .. 1) through one variant's graphs."""
    codes = run_encode(open_session(paths["encode"]), x)
    decoder = open_session(paths["decode"])
    return run_decode(decoder, codes, ramp(9, decoder.get_inputs()[0].shape[1]))


def _check_npm_files(node_modules: Path | None) -> Path:
    """The folder holding onnxruntime-web and gifenc, or a one-line error saying how to get it
    (from a pip install too, which has no web/ folder)."""
    root = node_modules or Path(__file__).resolve().parents[3] / "web" / "node_modules"
    missing = [k for k in NPM_FILES if not (root / k).is_file()]
    if missing:
        packages = " ".join(f"{k}@{v}" for k, v in NPM_PACKAGES.items())
        raise AffineGANError(
            f"{root / missing[0]} is missing: the page needs {packages}; install them with "
            f"`npm install --prefix DIR {packages}` and pass --node_modules DIR/node_modules"
        )
    return root


def write_web(model_dir: Path, web_dir: Path, node_modules: Path | None = None) -> Path:
    """The static page: HTML + JS module, the graphs and model.json, onnxruntime-web's files.
    Nothing on the page loads from anywhere but its own folder. Written whole or not at all,
    into an empty folder or over an earlier page (never over the user's own files)."""
    root = _check_npm_files(node_modules)
    manifest = json.loads((model_dir / MANIFEST).read_text())
    with atomic_folder(web_dir, WEB_MARKER, "--web") as tmp:
        for asset in ("index.html", "app.js"):
            shutil.copyfile(WEB_ASSETS / asset, tmp / asset)
        for src, dst in NPM_FILES.items():
            (tmp / dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / src, tmp / dst)
        models = tmp / "model"
        models.mkdir()
        shutil.copyfile(model_dir / MANIFEST, models / MANIFEST)
        for v in manifest["variants"].values():
            for graph in ("encode", "decode"):
                source = graph_file(model_dir, v[graph])
                shutil.copyfile(source, models / source.name)
    return web_dir


def format_report(r: ExportReport) -> str:
    """The lines ``affinegan export`` prints."""
    lines = [f"exported to {r.out_dir} in {r.seconds:.1f} s"]
    lines.append(
        f"largest |onnxruntime - PyTorch| on {r.face} and random inputs: "
        f"{max(r.max_diff.values()):.2e} "
        f"(tolerance {TOLERANCE:g}; "
        + ", ".join(f"{k} {v:.1e}" for k, v in r.max_diff.items())
        + ")"
    )
    for v, size in r.sizes.items():
        q = r.psnr.get(v)
        note = "" if q is None else f", PSNR {q:.1f} dB vs fp32" if math.isfinite(q) else ", = fp32"
        lines.append(f"  {v}: {size / 1e6:.2f} MB{note}")
    if r.web_dir is not None:
        lines.append(
            f"web page in {r.web_dir}: serve it with `python -m http.server -d {r.web_dir}` "
            "and open http://localhost:8000"
        )
    return "\n".join(lines)
