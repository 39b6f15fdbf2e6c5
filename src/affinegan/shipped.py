"""Models that ship inside the package, found by name, and packing a trained run into one.

A shipped model is a run folder in miniature under ``affinegan/models/<name>/``: the
generator's averaged weights as half-precision safetensors (``latest_net_G.safetensors``:
loading it executes nothing, unlike a pickled ``.pth``), the run's ``train_opt.json`` without
the trainer's local paths, and a ``MODEL_CARD.md`` (data, licence, the command that trained it,
its figures, its limits). Because the folder has a run's layout, every road that loads a run
(generate, evaluate, serve, export) loads it unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

from affinegan import checkpoint as ckpt
from affinegan.errors import AffineGANError
from affinegan.files import atomic_text, atomic_write
from affinegan.layout import CONFIG_FILE, weight_path

SHIPPED_DIR = Path(__file__).resolve().parent / "models"
CARD_FILE = "MODEL_CARD.md"
DEFAULT_MODEL = "smile"
ORIGINAL_MODEL = "affinegan"  # the original's --model value: its one model class, no folder
# Saved options that name the trainer's machine, not the model: left out of a packed config.
LOCAL_OPTIONS = ("dataroot", "checkpoints_dir", "results_dir", "gpu_ids")


def shipped_models() -> dict[str, Path]:
    """Name -> folder of every model shipped with the package."""
    if not SHIPPED_DIR.is_dir():
        return {}
    packed = weight_path("", "latest", "G").with_suffix(ckpt.PACKED_SUFFIX).name
    return {d.name: d for d in sorted(SHIPPED_DIR.iterdir()) if (d / packed).is_file()}


def card_summary(folder: Path) -> str:
    """The first clause of a model card's first paragraph, for listings."""
    card = Path(folder) / CARD_FILE
    if not card.is_file():
        return ""
    paragraphs = card.read_text(encoding="utf-8").split("\n\n")
    text = next((p for p in paragraphs if p.strip() and not p.lstrip().startswith("#")), "")
    return " ".join(text.split()).split(". ")[0].split("; ")[0].rstrip(".")


def resolve_model(spec: str | Path) -> Path:
    """A shipped model's name or a run folder -> the folder to load; one line otherwise."""
    path = Path(spec).expanduser()
    models = shipped_models()
    weights = ckpt.generator_weights(path, "latest")
    if path.is_dir() and (weights.is_file() or str(spec) not in models):
        if not weights.is_file():
            raise AffineGANError(
                f"{path}: no generator weights ({weights.name}); give a run folder written by "
                "`affinegan train` or a shipped model's name (`affinegan models` lists them)"
            )
        return path
    if str(spec) in models:  # a folder of that name without weights does not hide the model
        return models[str(spec)]
    names = ", ".join(models) or "none"
    raise AffineGANError(
        f"model {str(spec)!r}: no shipped model of that name and no such folder; shipped: {names} "
        "(`affinegan models`), or give a run folder"
    )


def run_folder(model: str, checkpoints_dir: str | Path, name: str) -> Path:
    """The folder generation loads: ``--model`` (a shipped name or a run folder), else
    ``<checkpoints_dir>/<name>``. The original's ``--model affineGAN`` (its one model class)
    names no folder and leaves ``--name`` in charge, so the original's commands still work."""
    if model and model.lower() != ORIGINAL_MODEL:
        return resolve_model(model)
    return Path(checkpoints_dir) / name


def pack(run_dir: Path, out: Path, epoch: str = "latest", half: bool = True) -> Path:
    """Write run ``run_dir``'s generator as a shipped model into folder ``out``: the EMA
    weights where the run kept them (what generation uses), as (half-precision) safetensors,
    and its config without local paths. The model card is written by hand beside them."""
    from safetensors.torch import save_file

    run_dir, out = Path(run_dir), Path(out)
    config = ckpt.read_config(run_dir)
    if config is None:
        raise AffineGANError(f"{run_dir}: no {CONFIG_FILE}; only runs of `affinegan train` pack")
    ema = config.get("ema", 0) > 0 and weight_path(run_dir, epoch, "G_ema").is_file()
    label = "G_ema" if ema else "G"  # an average left by an earlier run in the folder is not
    sd = ckpt.load_weights(ckpt.generator_weights(run_dir, epoch, label))
    tensors = {
        k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in sd.items()
    }
    if label == "G_ema":  # the packed file holds the average under the plain label
        config = {**config, "ema": 0.0, "packed_from": "G_ema"}
    config = {k: v for k, v in config.items() if k not in LOCAL_OPTIONS}
    out.mkdir(parents=True, exist_ok=True)
    target = weight_path(out, "latest", "G").with_suffix(ckpt.PACKED_SUFFIX)
    atomic_write(target, lambda tmp: save_file(tensors, str(tmp), {"format": "affinegan-G"}))
    atomic_text(json.dumps(config, indent=1, sort_keys=True) + "\n", out / CONFIG_FILE)
    return target
