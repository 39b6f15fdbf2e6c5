"""Checkpoints: the original's weight files plus one training-state file for exact resume.

The files of a run folder are named in ``layout.py``: the original's weight files
``<label>_net_<net>.pth`` (plain state_dicts in the original's key layout, readable by either
code), one training state holding networks, optimisers, progress, RNG state and the full config
(so a resume never mixes weights and optimiser state from different steps), ``train_opt.json``
(so generation needs no model flags) and, with ``--ema``, G's moving average.
Every file is written to a temporary name and renamed, so an interruption never leaves a
half-written checkpoint under a real name.
"""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from affinegan.config import UNET_DEPTHS, canonical_netg, refuse_removed_options
from affinegan.errors import AffineGANError
from affinegan.files import atomic_text, atomic_write
from affinegan.layout import CONFIG_FILE, STATE_FILE, weight_path

STATE_FORMAT = 2
PACKED_SUFFIX = ".safetensors"  # the weights of a packed (shipped) model
MAX_SIZE = 4096  # the largest fineSize a saved config may state (a 4096 px frame is 200 MB)
STATE_KEYS = ("format", "config", "progress", "nets", "optimizers", "rng")
log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where training stands: the epoch being run and the steps done in it and in total."""

    epoch: int = 1
    epoch_iter: int = 0
    total_steps: int = 0


def atomic_save(obj: Any, path: Path) -> Path:
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def clean_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (DataParallel/DDP ``module.``, torch.compile ``_orig_mod.``)."""
    out = {}
    for key, value in sd.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def save_weights(run_dir: Path, label: str, nets: list[tuple[str, torch.nn.Module]]) -> None:
    """The original's files, ``<label>_net_<name>.pth``, as CPU state_dicts."""
    for name, net in nets:
        sd = {k: v.detach().cpu() for k, v in clean_state_dict(net.state_dict()).items()}
        atomic_save(sd, weight_path(run_dir, label, name))


def _torch_load(path: Path, fix: str) -> Any:
    """``torch.load`` of tensors and plain containers only; any failure is one line, and a file
    holding code is refused (loading it would run that code), never with torch's hint to allow
    it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            raise AffineGANError(
                f"{path}: the file contains code (pickled Python objects), so it will not be "
                "loaded; use plain weights, e.g. the run folder written by `affinegan train`, or "
                "re-save them where the file is trusted: torch.save(net.state_dict(), path)"
            ) from None
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    raise AffineGANError(f"{path}: not a readable PyTorch checkpoint ({reason}); {fix}")


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict written by this project or by the original code, or a packed model's
    safetensors file (``PACKED_SUFFIX``; loading it executes nothing)."""
    if not Path(path).is_file():
        raise AffineGANError(f"{path}: no such checkpoint; train first or check --name/--epoch")
    if Path(path).suffix == PACKED_SUFFIX:
        return _load_packed(Path(path))
    sd = _torch_load(path, "re-copy it or train again")
    if not isinstance(sd, dict):
        raise AffineGANError(f"{path}: expected a state_dict, found {type(sd).__name__}")
    return clean_state_dict(sd)


def infer_generator_options(sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """netG / ngf / channels from a generator state_dict, for checkpoints without a config."""
    try:
        first = sd["model.down_base.0.weight"]  # (ngf, input_nc, 4, 4)
        last = sd["model.up_all.1.weight"]  # (2 ngf, output_nc, 4, 4)
    except KeyError:
        raise AffineGANError(
            "not an AffineGAN generator checkpoint (no model.down_base.0)"
        ) from None
    depth = 1 + max(k.count("sub.") for k in sd)
    names = {v: k for k, v in UNET_DEPTHS.items()}
    if depth not in names:
        raise AffineGANError(f"generator checkpoint has {depth} U-Net levels; expected 6, 7 or 8")
    norm = "batch" if any(k.endswith("running_mean") for k in sd) else "instance"
    return {
        "netG": names[depth],
        "ngf": first.shape[0],
        "input_nc": first.shape[1],
        "output_nc": last.shape[1],
        "norm": norm,
        "blend": "model.up_mask.weight" in sd,
        "warp": "model.up_flow.weight" in sd,
        "expressions": _count_expressions(sd),
    }


def _count_expressions(sd: dict[str, torch.Tensor]) -> int:
    """Residual streams of a generator: ``model.down_res_expr.<e>.`` per expression, or the
    single ``model.down_res`` of a one-expression model (the original's)."""
    prefix = "model.down_res_expr."
    found = {k[len(prefix) :].split(".")[0] for k in sd if k.startswith(prefix)}
    return 1 + max((int(e) for e in found), default=0)


def training_size(config: dict[str, Any], netg: str) -> int:
    """The square size a run works at: ``fineSize`` from its saved config, else (weights
    without a config, e.g. the original's) the size its U-Net depth is built for."""
    if config.get("fineSize"):
        return int(config["fineSize"])
    return 2 ** UNET_DEPTHS[canonical_netg(netg)]


def rng_state() -> dict[str, Any]:
    """This process's torch (and CUDA) RNG state: noise, dropout and alpha-prior samples."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def save_state(
    run_dir: Path,
    nets: list[tuple[str, torch.nn.Module]],
    optimizers: list[tuple[str, torch.optim.Optimizer]],
    progress: Progress,
    config: dict,
    rng: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Everything needed to continue exactly (``rng``: one state per rank; ``extra``: e.g. the
    fp16 loss scaler); written after the weight files."""
    state = {
        "format": STATE_FORMAT,
        "config": config,
        "progress": asdict(progress),
        "nets": {n: clean_state_dict(m.state_dict()) for n, m in nets},
        "optimizers": {n: o.state_dict() for n, o in optimizers},
        "rng": rng,
        "versions": {"torch": str(torch.__version__)},
        **(extra or {}),
    }
    return atomic_save(state, Path(run_dir) / STATE_FILE)


def load_state(run_dir: Path) -> dict[str, Any] | None:
    """The training state of a run, or None when it has none (e.g. original checkpoints)."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return None
    fix = "delete it to resume from the weight files alone"
    state = _torch_load(path, fix)
    if isinstance(state, dict) and state.get("format", STATE_FORMAT) != STATE_FORMAT:
        raise AffineGANError(
            f"{path}: training state of another version (format {state.get('format')!r}); {fix}"
        )
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise AffineGANError(
            f"{path}: not a training state (found {type(state).__name__} without a config); {fix}"
        )
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise AffineGANError(f"{path}: training state lacks {', '.join(missing)}; {fix}")
    refuse_removed_options(state["config"], path)
    return state


def remove_stale_temps(run_dir: Path) -> None:
    """Delete the temporary files of saves that were interrupted (``.<name>.*.tmp*``, up to a
    full training state each); called as a run starts or resumes, when none can be in use."""
    stale = [p for p in Path(run_dir).rglob(".*.tmp*") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary file(s) of interrupted saves in %s", len(stale), run_dir)


def restore_rng(state: dict[str, Any], rank: int = 0) -> bool:
    """Restore this rank's RNG state; False when the run was saved with fewer ranks."""
    states = state["rng"]
    if rank >= len(states):
        return False
    torch.set_rng_state(states[rank]["torch"])
    cuda = states[rank]["cuda"]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return True


def write_config(run_dir: Path, config: dict) -> Path:
    return atomic_text(
        json.dumps(config, indent=2, sort_keys=True) + "\n", Path(run_dir) / CONFIG_FILE
    )


def read_config(run_dir: Path) -> dict | None:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (ValueError, OSError) as err:  # JSONDecodeError and UnicodeDecodeError included
        raise AffineGANError(f"{path}: invalid JSON ({err}); delete it or fix it") from None
    size = config.get("fineSize", 0) if isinstance(config, dict) else None
    if type(size) is not int or not 0 <= size <= MAX_SIZE:  # read before any allocation
        raise AffineGANError(
            f"{path}: fineSize {size!r} is not a size from 1 to {MAX_SIZE} (a JSON object with "
            "the run's options is expected); delete it or fix it"
        )
    refuse_removed_options(config, path)
    return config


def generator_weights(run_dir: Path, label: str, net: str = "G") -> Path:
    """The weight file to load: ``<label>_net_<net>.pth`` as training writes it, else the
    safetensors file of a packed model (``affinegan.shipped``); the ``.pth`` path when neither
    exists, so the error names what training writes."""
    pth = weight_path(run_dir, label, net)
    packed = pth.with_suffix(PACKED_SUFFIX)
    return packed if not pth.is_file() and packed.is_file() else pth


def _load_packed(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors state_dict, half-precision tensors widened to float32 for CPU inference."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        sd = load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise AffineGANError(
            f"{path}: not a readable safetensors file ({err}); re-copy it"
        ) from None
    return {k: v.float() if v.dtype == torch.float16 else v for k, v in sd.items()}
