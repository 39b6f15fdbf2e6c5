"""The networks and optimisers of a run, built from its config alone (and the ``--ema`` average).

Initialised like the original (docs/method.md, "Generator" and "Discriminators"): seed the RNG
first, and every rank builds the same weights.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from affinegan.config import ModelOptions, TrainConfig
from affinegan.core.discriminators import AlphaDiscriminator, PatchDiscriminator
from affinegan.core.networks import Generator, init_weights


@dataclass
class Nets:
    G: Generator
    D: PatchDiscriminator
    D_alpha: AlphaDiscriminator
    D_patch: PatchDiscriminator | None
    G_ema: AveragedModel | None = None  # --ema: the moving average of G's weights

    def items(self) -> list[tuple[str, nn.Module]]:
        """(original file label, module): G, D, D_alpha, D_Patch (the trained networks)."""
        pairs = [("G", self.G), ("D", self.D), ("D_alpha", self.D_alpha)]
        return pairs + ([("D_Patch", self.D_patch)] if self.D_patch is not None else [])

    @property
    def G_eval(self) -> Generator:
        """The generator samples and generation should use: the average with ``--ema``."""
        return self.G if self.G_ema is None else self.G_ema.module


@dataclass
class Optimizers:
    G: torch.optim.Optimizer
    D: torch.optim.Optimizer
    D_alpha: torch.optim.Optimizer
    D_patch: torch.optim.Optimizer | None

    def items(self) -> list[tuple[str, torch.optim.Optimizer]]:
        pairs = [("G", self.G), ("D", self.D), ("D_alpha", self.D_alpha)]
        return pairs + ([("D_Patch", self.D_patch)] if self.D_patch is not None else [])


def build_ema(G: Generator, decay: float) -> AveragedModel:
    """An exponential moving average of G's weights (and buffers), updated after each G step.

    Samples of a GAN's average weights are smoother and less noisy than those of the last
    step, most of all early in training (docs/results.md measures it)."""
    return AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def build_generator(opts: ModelOptions) -> Generator:
    return init_weights(Generator(**opts.generator_kwargs()), opts.init_type, opts.init_gain)


def build_nets(cfg: TrainConfig) -> Nets:
    """All networks of a run, initialised like the original (seed the RNG first)."""
    n_layers = 3 if cfg.netD == "basic" else cfg.n_layers_D
    sigmoid = not cfg.lsgan

    heads = max(1, len(cfg.expression_names))  # one real/fake judgement per expression

    def patch_d() -> PatchDiscriminator:
        d = PatchDiscriminator(
            cfg.input_nc + cfg.output_nc, cfg.ndf, n_layers, cfg.norm, sigmoid, heads
        )
        return init_weights(d, cfg.init_type, cfg.init_gain)

    G = build_generator(cfg)
    D = patch_d()
    D_alpha = init_weights(
        AlphaDiscriminator(cfg.train_imagenum, sigmoid, heads),
        cfg.init_type,
        cfg.init_gain,
    )
    return Nets(G, D, D_alpha, patch_d() if cfg.use_patch else None)


def build_optimizers(nets: Nets, cfg: TrainConfig, fused: bool = True) -> Optimizers:
    """Adam for every network. ``fused=False`` is the original's plain ``torch.optim.Adam``
    (on CPU a loop over the tensors), which benchmarks time as the reference."""

    def adam(net: nn.Module) -> torch.optim.Optimizer:
        # The fused kernel (CPU since torch 2.4, CUDA) is the same update with fewer launches.
        if fused:
            with suppress(RuntimeError, TypeError, ValueError):
                return torch.optim.Adam(
                    net.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999), fused=True
                )
        return torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))

    return Optimizers(
        adam(nets.G),
        adam(nets.D),
        adam(nets.D_alpha),
        adam(nets.D_patch) if nets.D_patch is not None else None,
    )
