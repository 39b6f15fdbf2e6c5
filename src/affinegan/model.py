"""AffineGAN's objective and one optimisation step (METHOD.md, "Losses and the training step").

Per clip: f0 = f(A; 1, 0), fr = f(A; 0, 1), fk = f(B_k; 1, 0) and
``alpha_k = |<fk - f0, fr>| / (||fr|| + 1e-6)``; fake_k = G(A; 1, alpha_k), rec_k = G(B_k; 1, 0).
The original ran 2 + 2K full generator calls for this. Here A is encoded once (both streams),
the K targets once as a batch (base stream only), and fakes and reconstructions are decoded
together in one batch; the math, including where gradients flow, is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelOptions, TrainConfig
from .networks import (
    AlphaDiscriminator,
    Encoding,
    Generator,
    PatchDiscriminator,
    init_weights,
)


@dataclass
class Nets:
    G: Generator
    D: PatchDiscriminator
    D_alpha: AlphaDiscriminator
    D_patch: PatchDiscriminator | None

    def items(self) -> list[tuple[str, nn.Module]]:
        """(original file label, module): G, D, D_alpha, D_Patch."""
        pairs = [("G", self.G), ("D", self.D), ("D_alpha", self.D_alpha)]
        return pairs + ([("D_Patch", self.D_patch)] if self.D_patch is not None else [])


@dataclass
class Optimizers:
    G: torch.optim.Optimizer
    D: torch.optim.Optimizer
    D_alpha: torch.optim.Optimizer
    D_patch: torch.optim.Optimizer | None

    def items(self) -> list[tuple[str, torch.optim.Optimizer]]:
        pairs = [("G", self.G), ("D", self.D), ("D_alpha", self.D_alpha)]
        return pairs + ([("D_Patch", self.D_patch)] if self.D_patch is not None else [])


def build_generator(opts: ModelOptions) -> Generator:
    return init_weights(Generator(**opts.generator_kwargs()), opts.init_type, opts.init_gain)


def build_nets(cfg: TrainConfig) -> Nets:
    """All networks of a run, initialised like the original (seed the RNG first)."""
    n_layers = 3 if cfg.netD == "basic" else cfg.n_layers_D
    sigmoid = not cfg.lsgan

    def patch_d() -> PatchDiscriminator:
        d = PatchDiscriminator(cfg.input_nc + cfg.output_nc, cfg.ndf, n_layers, cfg.norm, sigmoid)
        return init_weights(d, cfg.init_type, cfg.init_gain)

    G = build_generator(cfg)
    D = patch_d()
    D_alpha = init_weights(
        AlphaDiscriminator(cfg.train_imagenum, sigmoid), cfg.init_type, cfg.init_gain
    )
    return Nets(G, D, D_alpha, patch_d() if cfg.use_patch else None)


def build_optimizers(nets: Nets, cfg: TrainConfig) -> Optimizers:
    def adam(net: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))

    return Optimizers(
        adam(nets.G),
        adam(nets.D),
        adam(nets.D_alpha),
        adam(nets.D_patch) if nets.D_patch is not None else None,
    )


def lr_factor(epoch: int, cfg: TrainConfig) -> float:
    """The original's schedule: constant for ``niter`` epochs, then linear decay to zero."""
    return 1.0 - max(0, epoch + 1 - cfg.niter) / float(cfg.niter_decay + 1)


def infer_alpha(f0: torch.Tensor, fr: torch.Tensor, fk: torch.Tensor) -> torch.Tensor:
    """Intensity of each target: projection of its base code's offset onto the residual code.

    f0, fr: (N, ...) features of the neutral faces; fk: (N, K, ...) of the targets -> (N, K).
    """
    n, k = fk.shape[:2]
    f0, fr, fk = f0.reshape(n, 1, -1), fr.reshape(n, 1, -1), fk.reshape(n, k, -1)
    return ((fk - f0) * fr).sum(-1).abs() / (fr.flatten(1).norm(dim=1, keepdim=True) + 1e-6)


def gan_loss(pred: torch.Tensor, real: bool, lsgan: bool) -> torch.Tensor:
    """BCE on sigmoid outputs (original default) or least squares, against all-real/all-fake."""
    target = torch.ones_like(pred) if real else torch.zeros_like(pred)
    return F.mse_loss(pred, target) if lsgan else F.binary_cross_entropy(pred, target)


@dataclass
class Forward:
    """What one generator pass over a batch produces; fakes/recs are (N*K, C, H, W)."""

    alpha: torch.Tensor  # (N, K), differentiable w.r.t. G's encoders
    fake: torch.Tensor
    rec: torch.Tensor
    A_rep: torch.Tensor  # A repeated per target, (N*K, C, H, W)
    B: torch.Tensor  # targets, (N*K, C, H, W)


def _concat(a: Encoding, b: Encoding) -> Encoding:
    """Stack a two-stream encoding with a base-only one (its residual is never used: t = 0)."""
    cat = torch.cat
    assert a.skips_res is not None and a.bottom_res is not None
    return Encoding(
        [cat([x, y]) for x, y in zip(a.skips_base, b.skips_base, strict=True)],
        [cat([x, torch.zeros_like(y)]) for x, y in zip(a.skips_res, b.skips_base, strict=True)],
        cat([a.bottom_base, b.bottom_base]),
        cat([a.bottom_res, torch.zeros_like(b.bottom_base)]),
    )


def generator_forward(G: Generator, A: torch.Tensor, B: torch.Tensor) -> Forward:
    """Encode A once and the K targets once, infer alpha, decode fakes and recs in one batch.

    A: (N, C, H, W); B: (N, K, C, H, W).
    """
    n, k = B.shape[:2]
    B = B.flatten(0, 1)
    enc_a = G.encode(A, residual=True)
    enc_b = G.encode(B, residual=False)
    f0 = G.feature(enc_a, 1.0, 0.0)
    fr = G.feature(enc_a, 0.0, 1.0)
    fk = G.feature(enc_b, 1.0, None)
    alpha = infer_alpha(f0, fr, fk.unflatten(0, (n, k)))  # (N, K)
    rep = torch.arange(n, device=A.device).repeat_interleave(k)
    both = _concat(enc_a.index(rep), enc_b)
    t = torch.cat([alpha.detach().flatten(), alpha.new_zeros(n * k)])
    out = G.decode(both, 1.0, t)
    return Forward(alpha, out[: n * k], out[n * k :], A[rep], B)


def set_requires_grad(net: nn.Module | None, flag: bool) -> None:
    if net is not None:
        for p in net.parameters():
            p.requires_grad_(flag)


def _d_step(
    D: nn.Module,
    opt: torch.optim.Optimizer,
    cond: torch.Tensor,
    fake: torch.Tensor,
    real: torch.Tensor,
    lsgan: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One PatchGAN update on real and (detached) fake pairs, in a single batched call."""
    pred = D(torch.cat([torch.cat([cond, fake.detach()], 1), torch.cat([cond, real], 1)]))
    pred_fake, pred_real = pred.chunk(2)
    loss_fake, loss_real = gan_loss(pred_fake, False, lsgan), gan_loss(pred_real, True, lsgan)
    opt.zero_grad(set_to_none=True)
    ((loss_fake + loss_real) * 0.5).backward()
    opt.step()
    return loss_fake.detach(), loss_real.detach()


def train_step(
    nets: Nets, opts: Optimizers, batch: dict, cfg: TrainConfig
) -> dict[str, torch.Tensor]:
    """One iteration in the original's order: D_alpha, D, D_patch, then G. Returns losses
    as detached tensors (no host sync here; read them only when printing).
    """
    A, B = batch["A"], batch["B"]
    k, lsgan = B.shape[1], cfg.lsgan
    fw = generator_forward(nets.G, A, B)
    losses: dict[str, torch.Tensor] = {}

    # 1. D_alpha: inferred intensities (fake) vs U[0, 1) (real).
    u = torch.rand(fw.alpha.shape, device=A.device, dtype=fw.alpha.dtype)
    da_fake = gan_loss(nets.D_alpha(fw.alpha.detach()), False, lsgan)
    da_real = gan_loss(nets.D_alpha(u), True, lsgan)
    opts.D_alpha.zero_grad(set_to_none=True)
    loss_da = (da_fake + da_real) * 0.5 * cfg.lambda_A
    loss_da.backward()
    opts.D_alpha.step()
    losses["D_alpha"] = loss_da.detach()

    # 2. D on (A, B) pairs; 3. D_patch on the same pairs masked to the mouth.
    losses["D_fake"], losses["D_real"] = _d_step(nets.D, opts.D, fw.A_rep, fw.fake, fw.B, lsgan)
    if nets.D_patch is not None:
        mask_a = batch["mask_A"].repeat_interleave(k, 0)
        mask_b = batch["mask_B"].flatten(0, 1)
        cond_p, fake_p, real_p = fw.A_rep * mask_a, fw.fake * mask_b, fw.B * mask_b
        assert opts.D_patch is not None
        fake_l, real_l = _d_step(nets.D_patch, opts.D_patch, cond_p, fake_p, real_p, lsgan)
        losses["D_fake_patch"], losses["D_real_patch"] = fake_l, real_l
        losses["D_patch"] = (fake_l + real_l) * 0.5
    losses["D"] = (losses["D_fake"] + losses["D_real"]) * 0.5

    # 4. G against the just-updated discriminators (frozen).
    frozen = (nets.D, nets.D_alpha, nets.D_patch)
    for net in frozen:
        set_requires_grad(net, False)
    g_gan = gan_loss(nets.D(torch.cat([fw.A_rep, fw.fake], 1)), True, lsgan)
    g_l1 = F.l1_loss(fw.fake, fw.B) * cfg.lambda_L1
    g_rec = F.l1_loss(fw.rec, fw.B) * cfg.lambda_rec
    g_alpha = gan_loss(nets.D_alpha(fw.alpha), True, lsgan) * cfg.lambda_A
    loss_g = g_gan + g_l1 + g_rec + g_alpha / k
    if nets.D_patch is not None:
        g_patch = gan_loss(nets.D_patch(torch.cat([cond_p, fake_p], 1)), True, lsgan)
        loss_g = loss_g + g_patch
        losses["G_GAN_patch"] = g_patch.detach()
    opts.G.zero_grad(set_to_none=True)
    loss_g.backward()
    opts.G.step()
    for net in frozen:
        set_requires_grad(net, True)

    losses.update(
        G=loss_g.detach(),
        G_GAN_D1=g_gan.detach(),
        G_L1=g_l1.detach(),
        img_recons=g_rec.detach(),
        G_GAN_D_alpha=g_alpha.detach(),
        alpha_mean=fw.alpha.detach().mean(),
    )
    return losses
