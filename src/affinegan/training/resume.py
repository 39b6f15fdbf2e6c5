"""Continuing a run: which options win (the saved ones, bar how long and how to run), and
restoring the training state or the original's weight files."""

from __future__ import annotations

import logging
from dataclasses import asdict, fields
from pathlib import Path

import torch

from affinegan import checkpoint as ckpt
from affinegan import layout
from affinegan.config import ModelOptions, TrainConfig
from affinegan.core.build import Nets, Optimizers
from affinegan.core.step import StepOptions
from affinegan.errors import AffineGANError
from affinegan.options import from_dict
from affinegan.training import distributed as dist

log = logging.getLogger(__name__)


def _load(net: torch.nn.Module, state_dict: dict, source: Path | str) -> None:
    """Load weights, or say which flags make the model fit them (not torch's key list)."""
    try:
        net.load_state_dict(state_dict)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise AffineGANError(
            f"{source}: weights do not fit this model ({first}); pass the --netG/--ngf/--ndf/"
            "--train_imagenum/--blend/--warp/--preset it was trained with"
        ) from None


def restore(
    cfg: TrainConfig, nets: Nets, opts: Optimizers, so: StepOptions, world: dist.World
) -> ckpt.Progress:
    """Resume from the training state if there is one, else from (original) weight files."""
    state = ckpt.load_state(cfg.run_dir) if cfg.epoch == "latest" else None
    if state is not None:
        source = cfg.run_dir / layout.STATE_FILE
        for name, net in nets.items():
            _load(net, state["nets"][name], source)
        for name, opt in opts.items():
            opt.load_state_dict(state["optimizers"][name])
        if so.scaler is not None and state.get("scaler"):
            so.scaler.load_state_dict(state["scaler"])
        if nets.G_ema is not None:
            if state.get("ema"):
                _load(nets.G_ema, state["ema"], source)
            else:
                log.warning("note: %s holds no --ema average; it starts from G now", source)
        if not ckpt.restore_rng(state, world.rank):
            log.warning(
                "note: the run was saved with fewer processes; rank %d reseeded", world.rank
            )
        progress = ckpt.Progress(**state["progress"])
        log.info(
            "resumed %s at epoch %d, step %d", cfg.run_dir, progress.epoch, progress.total_steps
        )
        return progress
    note_model_options(cfg)
    for name, net in nets.items():
        path = layout.weight_path(cfg.run_dir, cfg.epoch, name)
        if name == "G" or path.is_file():
            _load(net, ckpt.load_weights(path), path)
        else:
            log.warning("note: %s not found; %s starts from scratch", path, name)
    ema_path = layout.weight_path(cfg.run_dir, cfg.epoch, "G_ema")
    if nets.G_ema is not None and ema_path.is_file():
        _load(nets.G_ema.module, ckpt.load_weights(ema_path), ema_path)
        nets.G_ema.n_averaged.fill_(1)  # go on averaging from the saved average
    log.info(
        "loaded %s weights from %s; optimisers start fresh at epoch %d",
        cfg.epoch,
        cfg.run_dir,
        cfg.epoch_count,
    )
    return ckpt.Progress(epoch=cfg.epoch_count)


def note_model_options(cfg: TrainConfig) -> None:
    """Weight files load with the command line's options, as in the original; where the run's
    saved config defined the networks otherwise (e.g. --noise_std, which no weight shape
    shows), say so rather than train a different model silently."""
    saved = ckpt.read_config(cfg.run_dir) or {}
    differ = [
        f"--{f.name} {saved[f.name]} (now {getattr(cfg, f.name)})"
        for f in fields(ModelOptions)
        if f.name in saved and saved[f.name] != getattr(cfg, f.name)
    ]
    if differ:
        log.warning(
            "note: %s was saved with %s; pass them to keep its model",
            cfg.run_dir / layout.CONFIG_FILE,
            ", ".join(differ),
        )


def resolve_resume(cfg: TrainConfig) -> TrainConfig:
    """With --continue_train, the run's saved options win except for how long and how to run.

    Only a resume from the latest state does this; ``--epoch N`` loads those weight files and
    starts fresh optimisers at ``--epoch_count``, as the original did.
    """
    state = ckpt.load_state(cfg.run_dir) if cfg.continue_train and cfg.epoch == "latest" else None
    if state is None:
        return cfg
    saved = from_dict(TrainConfig, state["config"])
    for key in RUNTIME_OPTIONS:
        setattr(saved, key, getattr(cfg, key))
    saved.continue_train = True
    default = TrainConfig()
    ignored = [
        f"--{key} {getattr(cfg, key)} (the run has {getattr(saved, key)})"
        for key in asdict(cfg)
        if getattr(cfg, key) != getattr(saved, key) and getattr(cfg, key) != getattr(default, key)
    ]
    if ignored:
        log.warning(
            "note: --continue_train keeps the run's saved options; ignored: %s", ", ".join(ignored)
        )
    return saved


# Options a resumed run takes from the new command line rather than from its checkpoint.
RUNTIME_OPTIONS = (
    "name",
    "torch_threads",
    "niter",
    "niter_decay",
    "decay_fraction",  # with --max_steps, how long: a schedule given now replaces the run's
    "max_steps",
    "print_freq",
    "display_freq",
    "save_latest_freq",
    "save_epoch_freq",
    "num_threads",
    "gpu_ids",
    "dataroot",
    "checkpoints_dir",
    "verbose",
    "no_html",
    "compile",
    "channels_last",
    "amp",
)
