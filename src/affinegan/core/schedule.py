"""The learning-rate schedule: the original's constant-then-linear decay, and the same shape
fitted to a run sized in steps (``--decay_fraction``)."""

from __future__ import annotations

import math
from dataclasses import replace

from affinegan.config import TrainConfig


def lr_factor(epoch: int, cfg: TrainConfig) -> float:
    """The original's schedule, exactly: factor 1 up to epoch ``niter - 1``, then falling
    linearly by ``1 / (niter_decay + 1)`` per epoch, so epoch ``niter + niter_decay`` runs at 0."""
    return 1.0 - max(0, epoch + 1 - cfg.niter) / float(cfg.niter_decay + 1)


def budget_schedule(cfg: TrainConfig, steps_per_epoch: int) -> TrainConfig:
    """``cfg`` with ``niter``/``niter_decay`` set from ``--decay_fraction`` and ``--max_steps``:
    a run sized in steps decays over the last share of the epochs it will train, which a preset
    cannot state in epochs without knowing the data. Of the E epochs the budget buys, the first
    E - D run at the full rate and the last D at D/(D+1) ... 1/(D+1) (``lr_factor``'s epoch at 0
    lies past the budget). Unchanged when either option is 0."""
    if not (cfg.decay_fraction and cfg.max_steps):
        return cfg
    epochs = -(-cfg.max_steps // steps_per_epoch)
    decay = min(epochs - 1, math.floor(cfg.decay_fraction * epochs + 0.5))
    return replace(cfg, niter=cfg.epoch_count + epochs - decay, niter_decay=decay)
