"""``model.json`` of an export, read as untrusted input: an export folder is something users
download and share, as they do checkpoints.

Every value generation uses is checked before anything is allocated from it (a size bounded,
names bounded in count and length, graph files inside the export folder), and every problem is
one ``AffineGANError`` naming the file and the fix. :func:`check_graphs_match` then holds the
graphs themselves to what the file says, so the graphs' own shapes bound every allocation.
Imports no torch (the onnxruntime backend shares it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from affinegan.errors import AffineGANError
from affinegan.layout import MANIFEST

FORMAT_VERSION = 1
MAX_BYTES = 1 << 20  # an export's model.json is a few kB
MAX_IMAGE_SIZE = 1024  # unet_256 works at 256 px; 1024 leaves room without gigabyte frames
MAX_EXPRESSIONS = 64
MAX_NAME = 100  # characters of an expression or variant name
REEXPORT = "export the model again (`affinegan export`)"


def _fail(path: Path, problem: str) -> AffineGANError:
    return AffineGANError(f"{path}: {problem}; {REEXPORT}")


def _inside(model_dir: Path, name: str, what: str) -> Path:
    """``model_dir / name`` resolved, refused when it leads out of the folder."""
    root = Path(model_dir).resolve()
    target = (root / name).resolve()
    if Path(name).is_absolute() or not target.is_relative_to(root):
        raise AffineGANError(
            f"{Path(model_dir) / MANIFEST}: {what} is outside the export folder; refusing to "
            f"load it (an export keeps its files in its own folder: {REEXPORT})"
        )
    return target


def _read_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, read only when small and inside its folder."""
    if not path.is_file():
        raise AffineGANError(
            f"{path}: not found; pass --onnx_dir with the folder `affinegan export` wrote "
            "(its --out), or run `affinegan export` for this model first"
        )
    path = _inside(path.parent, path.name, "model.json (a link)")
    if path.stat().st_size > MAX_BYTES:
        raise _fail(path, f"larger than {MAX_BYTES >> 10} kB, not a model.json")
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, OSError) as err:  # JSONDecodeError and UnicodeDecodeError included
        raise _fail(path, f"not readable JSON ({err})") from None
    if not isinstance(data, dict):
        raise _fail(path, f"expected a JSON object, found {type(data).__name__}")
    return data


def _check_names(path: Path, value: Any) -> None:
    """The expression names: 1 to MAX_EXPRESSIONS distinct non-empty short strings."""
    ok = (
        isinstance(value, list)
        and 1 <= len(value) <= MAX_EXPRESSIONS
        and all(isinstance(n, str) and 0 < len(n) <= MAX_NAME for n in value)
        and len(set(value)) == len(value)
    )
    if not ok:
        raise _fail(
            path,
            f"'expressions' must list 1 to {MAX_EXPRESSIONS} distinct names of at most "
            f"{MAX_NAME} characters",
        )


def graph_file(model_dir: Path, name: Any) -> Path:
    """The graph ``name`` of a variant: a file inside ``model_dir`` (no absolute path, no ``..``,
    no link out of the folder), else a one-line refusal."""
    path = model_dir / MANIFEST
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise _fail(path, f"graph file {name!r} is not a file name")
    target = _inside(model_dir, name, f"graph file {name!r}")
    if not target.is_file():
        raise _fail(path, f"graph file {name!r} is missing")
    return target


def read_manifest(model_dir: Path, variant: str = "fp32") -> tuple[dict[str, Any], dict[str, Path]]:
    """``model_dir/model.json`` checked, and the encode and decode graph files of ``variant``."""
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST
    data = _read_object(path)
    version = data.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise _fail(path, f"format version {version!r}, this affinegan reads {FORMAT_VERSION}")
    size = data.get("image_size")
    if type(size) is not int or not 1 <= size <= MAX_IMAGE_SIZE:
        raise _fail(path, f"'image_size' {size!r} is not a whole number from 1 to {MAX_IMAGE_SIZE}")
    _check_names(path, data.get("expressions"))
    name = data.get("name")  # results are filed under it: a plain folder name
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= MAX_NAME
        or name in (".", "..")
        or (set(name) & set("/\\\0"))
    ):
        raise _fail(path, f"'name' {str(name)[:MAX_NAME]!r} is not a model name")
    variants = data.get("variants")
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        raise _fail(path, "'variants' must map each variant to its encode and decode files")
    if variant not in variants:
        known = ", ".join(str(k)[:MAX_NAME] for k in list(variants)[:MAX_EXPRESSIONS])
        raise AffineGANError(f"{path}: no {variant} graphs (exported: {known or 'none'})")
    files = {g: graph_file(model_dir, variants[variant].get(g)) for g in ("encode", "decode")}
    if files["encode"] == files["decode"]:
        raise _fail(path, "the encode and decode graphs are one file")
    return data, files


def check_graphs_match(path: Path, encoder: Any, decoder: Any, size: int, expressions: int) -> None:
    """Refuse graphs that do not fit ``model.json`` (``path``) or each other: the encoder takes
    one ``size`` px face, the decoder takes ``(frames, expressions)`` intensities and exactly the
    codes the encoder returns, in shape. Graphs of another model or size fail here, not deep in
    onnxruntime."""
    codes = {o.name: o.shape for o in encoder.get_outputs()}
    inputs = decoder.get_inputs()
    found = {
        "encoder input": [list(i.shape) for i in encoder.get_inputs()],
        "decoder alpha": list(inputs[0].shape[1:]) if inputs else None,
        "decoder codes": {i.name: i.shape for i in inputs[1:]},
    }
    wanted = {
        "encoder input": [[1, 3, size, size]],
        "decoder alpha": [expressions],
        "decoder codes": codes,
    }
    for what, want in wanted.items():
        if found[what] != want:
            raise _fail(
                path,
                f"its graphs do not fit it or each other ({what}: {str(found[what])[:120]}, "
                f"expected {str(want)[:120]}); the graphs may come from another model",
            )
