"""AffineGAN's objective and one optimisation step.

The method: docs/method.md, "Losses and the training step" and "Intensity inference".

Per clip: f0 = f(A; 1, 0), fr = f(A; 0, 1), fk = f(B_k; 1, 0) and
``alpha_k = |<fk - f0, fr>| / (||fr|| + 1e-6)``; fake_k = G(A; 1, alpha_k), rec_k = G(B_k; 1, 0).
The original ran 2 + 2K full generator calls for this. Here A is encoded once (both streams),
the K targets once (base stream only, in one batch with A's), and the fakes and the
reconstructions are each decoded as one batch (both in a single batch when they are small); the
math, including where gradients flow, is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .config import ModelOptions, TrainConfig
from .metrics import region_margin
from .networks import (
    AlphaDiscriminator,
    Encoding,
    Generator,
    PatchDiscriminator,
    init_weights,
    repeat_each,
)


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
        AlphaDiscriminator(cfg.train_imagenum, sigmoid), cfg.init_type, cfg.init_gain
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


def lr_factor(epoch: int, cfg: TrainConfig) -> float:
    """The original's schedule, exactly: factor 1 up to epoch ``niter - 1``, then falling
    linearly by ``1 / (niter_decay + 1)`` per epoch, so epoch ``niter + niter_decay`` runs at 0."""
    return 1.0 - max(0, epoch + 1 - cfg.niter) / float(cfg.niter_decay + 1)


def infer_alpha(f0: torch.Tensor, fr: torch.Tensor, fk: torch.Tensor) -> torch.Tensor:
    """Intensity of each target: projection of its base code's offset onto the residual code.

    f0, fr: (N, ...) features of the neutral faces; fk: (N, K, ...) of the targets -> (N, K).
    """
    n, k = fk.shape[:2]
    f0, fr, fk = f0.reshape(n, 1, -1), fr.reshape(n, 1, -1), fk.reshape(n, k, -1)
    return ((fk - f0) * fr).sum(-1).abs() / (fr.flatten(1).norm(dim=1, keepdim=True) + 1e-6)


def order_hinge(alpha: torch.Tensor, index: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over target pairs of a clip with frame_j < frame_k of relu(alpha_j - alpha_k + margin).

    Not in the original (``--lambda_order``, default off): every training clip runs from neutral
    to peak, so a later frame should not get a smaller intensity; the original's losses leave
    the order of the alphas unconstrained. alpha, index: (N, K); pairs of equal frames skipped.
    """
    later = (index[:, None, :] > index[:, :, None]).to(alpha.dtype)  # [n, j, k]: k after j
    gap = alpha[:, :, None] - alpha[:, None, :] + margin
    return (torch.relu(gap) * later).sum() / later.sum().clamp(min=1)


def expression_region(real: torch.Tensor, cond: torch.Tensor, threshold: float) -> torch.Tensor:
    """(M, 1, H, W) float mask of where the expression is: the pixels where a target leaves the
    range of its input's values within m pixels by more than ``threshold`` grey levels in some
    channel, grown by m pixels (m = ``metrics.region_margin``: 1 at 64 px). A head that moved by
    up to m pixels only shifts contours, which stays inside that range, so the loss is not spent
    on motion no model can predict (the rule of ``metrics.expression_region``)."""
    m = region_margin(real.shape[-1])
    hi = F.max_pool2d(cond, 2 * m + 1, 1, m)
    lo = -F.max_pool2d(-cond, 2 * m + 1, 1, m)
    change = (torch.relu(lo - real) + torch.relu(real - hi)).amax(1, keepdim=True)
    return F.max_pool2d((change > threshold * 2.0 / 255.0).to(real.dtype), 2 * m + 1, 1, m)


def region_l1(fake: torch.Tensor, real: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the region's pixels only, so a small mouth counts as much as a
    large one (``--lambda_region``; not in the original)."""
    err = (fake - real).abs() * region
    return err.sum() / (region.sum() * fake.shape[1]).clamp(min=1.0)


def gan_loss(pred: torch.Tensor, real: bool, lsgan: bool) -> torch.Tensor:
    """BCE on sigmoid outputs (original default) or least squares, against all-real/all-fake.

    Always in float32 outside autocast (BCE on half-precision probabilities is unsafe).
    """
    with torch.autocast(pred.device.type, enabled=False):
        pred = pred.float() if pred.dtype in (torch.float16, torch.bfloat16) else pred
        target = torch.ones_like(pred) if real else torch.zeros_like(pred)
        return F.mse_loss(pred, target) if lsgan else F.binary_cross_entropy(pred, target)


@dataclass
class StepOptions:
    """How a step runs, not what it computes: mixed precision and multi-process gradient sync."""

    amp: torch.dtype | None = None  # autocast dtype (bfloat16 / float16), None for float32
    scaler: torch.amp.GradScaler | None = None  # loss scaling for float16
    sync: Callable[[nn.Module], None] | None = None  # e.g. average gradients over ranks

    def autocast(self, device: torch.device) -> AbstractContextManager:
        if self.amp is None:
            return nullcontext()
        return torch.autocast(device.type, dtype=self.amp)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def step(self, net: nn.Module, opt: torch.optim.Optimizer) -> None:
        if self.sync is not None:
            self.sync(net)
        if self.scaler is not None:
            self.scaler.step(opt)
        else:
            opt.step()


@dataclass
class Encoded:
    """A batch after the encoders: both encodings and the inferred intensities."""

    enc_a: Encoding  # neutral faces, both streams, (N, ...)
    enc_b: Encoding  # targets, base stream only, (N*K, ...)
    alpha: torch.Tensor  # (N, K), differentiable w.r.t. the encoders


def encode_batch(
    G: Generator, A: torch.Tensor, B: torch.Tensor, expression: torch.Tensor | None = None
) -> Encoded:
    """Encode A once (both streams) and the K targets once, in one batch with A's base stream;
    infer alpha per clip (along the residual stream of the clip's expression, multi-expression).

    A: (N, C, H, W); B: (N, K, C, H, W); expression: (N,) indices or None.
    """
    n, k = B.shape[:2]
    enc_a, enc_b = G.encode_pair(A, B.flatten(0, 1), expression)
    f0 = G.feature(enc_a, 1.0, 0.0)
    fr = G.feature(enc_a, 0.0, 1.0)
    fk = G.feature(enc_b, 1.0, None).unflatten(0, (n, k))
    return Encoded(enc_a, enc_b, infer_alpha(f0, fr, fk))


def decode_fakes(G: Generator, enc_a: Encoding, alpha: torch.Tensor) -> torch.Tensor:
    """fake_k = G(A; 1, alpha_k) for every clip and target: (N*K, C, H, W); alpha is a constant."""
    return G.decode(enc_a, 1.0, alpha.detach().flatten())


def decode_recs(G: Generator, enc_b: Encoding) -> torch.Tensor:
    """rec_k = G(B_k; 1, 0): the targets rebuilt from their base stream alone."""
    return G.decode(enc_b, 1.0, None)


# Above this many decoded elements x ngf, fakes and reconstructions are decoded one after the
# other, each graph freed by its own backward (memory-bound: the paper config peaks at 0.55x
# the original's memory); at or below it, as one batch, which saves per-call overhead where the
# step is overhead-bound (small images and widths). docs/performance.md has both measured.
JOINT_DECODE_MAX = 2**22


def decode_jointly(B: torch.Tensor, cfg: TrainConfig) -> bool:
    """Whether ``train_step`` decodes fakes and reconstructions of targets ``B`` as one batch.

    Never with ``--norm batch``: its statistics would then pool fakes and reconstructions.
    """
    return cfg.norm != "batch" and B[:, :, 0].numel() * cfg.ngf <= JOINT_DECODE_MAX


def decode_fakes_and_recs(
    G: Generator, enc_a: Encoding, enc_b: Encoding, alpha: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``decode_fakes`` and ``decode_recs`` as one batch."""
    out = G.decode_parts([(enc_a, alpha.detach().flatten()), (enc_b, None)], 1.0)
    fake, rec = out.split(alpha.numel())
    return fake, rec


@dataclass
class Forward:
    """Everything one generator pass produces (for samples and tests)."""

    alpha: torch.Tensor  # (N, K)
    fake: torch.Tensor  # (N*K, C, H, W)
    rec: torch.Tensor  # (N*K, C, H, W)


def generator_forward(
    G: Generator, A: torch.Tensor, B: torch.Tensor, expression: torch.Tensor | None = None
) -> Forward:
    enc = encode_batch(G, A, B, expression)
    return Forward(enc.alpha, decode_fakes(G, enc.enc_a, enc.alpha), decode_recs(G, enc.enc_b))


def set_requires_grad(net: nn.Module | None, flag: bool) -> None:
    if net is not None:
        net.requires_grad_(flag)


def _d_step(
    D: nn.Module,
    opt: torch.optim.Optimizer,
    pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    lsgan: bool,
    so: StepOptions,
    head: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One PatchGAN update on real and (detached) fake pairs (cond, fake, real), one batch;
    ``head``: each pair's expression (multi-expression), for both halves."""
    cond, fake, real = pairs
    heads = None if head is None else torch.cat([head, head])
    with so.autocast(cond.device):
        x = torch.cat([torch.cat([cond, fake.detach()], 1), torch.cat([cond, real], 1)])
        pred = D(x, heads)
    pred_fake, pred_real = pred.chunk(2)
    loss_fake, loss_real = gan_loss(pred_fake, False, lsgan), gan_loss(pred_real, True, lsgan)
    opt.zero_grad(set_to_none=True)
    so.scale((loss_fake + loss_real) * 0.5).backward()
    so.step(D, opt)
    return loss_fake.detach(), loss_real.detach()


def train_step(
    nets: Nets, opts: Optimizers, batch: dict, cfg: TrainConfig, so: StepOptions | None = None
) -> dict[str, torch.Tensor]:
    """One iteration in the original's order: D_alpha, D, D_patch, then G.

    Memory: above ``JOINT_DECODE_MAX`` the decoders run on detached copies of the encodings,
    so each decoder's graph is freed by its own backward (fakes, then reconstructions) and the
    encoders receive the summed gradient once at the end; at or below it, one graph and one
    backward. Either way the gradients are the same sums the original formed.
    Returns detached losses (no host sync here; read them only when printing).
    """
    so = so or StepOptions()
    G, A, B, lsgan = nets.G, batch["A"], batch["B"], cfg.lsgan
    n, k = B.shape[:2]
    joint = decode_jointly(B, cfg)
    expression = batch["expression"] if G.expressions > 1 else None
    head = None if expression is None else repeat_each(expression, k)  # per (A, B_k) pair
    with so.autocast(A.device):
        enc = encode_batch(G, A, B, expression)
        if joint:
            fake, rec = decode_fakes_and_recs(G, enc.enc_a, enc.enc_b, enc.alpha)
        else:
            leaf_a = enc.enc_a.map(lambda t: t.detach().requires_grad_(t.requires_grad))
            leaf_b = enc.enc_b.map(lambda t: t.detach().requires_grad_(t.requires_grad))
            fake = decode_fakes(G, leaf_a, enc.alpha)
    real, cond = B.flatten(0, 1), repeat_each(A, k)
    losses: dict[str, torch.Tensor] = {}

    # 1. D_alpha: inferred intensities (fake) vs U[0, 1) (real).
    alpha = enc.alpha
    u = torch.rand(alpha.shape, device=A.device, dtype=alpha.dtype)
    with so.autocast(A.device):
        pred_fake, pred_real = nets.D_alpha(alpha.detach()), nets.D_alpha(u)
    opts.D_alpha.zero_grad(set_to_none=True)
    loss_da = (gan_loss(pred_fake, False, lsgan) + gan_loss(pred_real, True, lsgan)) * 0.5
    loss_da = loss_da * cfg.lambda_A
    so.scale(loss_da).backward()
    so.step(nets.D_alpha, opts.D_alpha)
    losses["D_alpha"] = loss_da.detach()

    # 2. D on (A, B) pairs; 3. D_patch on the same pairs masked to the mouth.
    losses["D_fake"], losses["D_real"] = _d_step(
        nets.D, opts.D, (cond, fake, real), lsgan, so, head
    )
    losses["D"] = (losses["D_fake"] + losses["D_real"]) * 0.5
    if nets.D_patch is not None:
        assert opts.D_patch is not None
        mask_b = batch["mask_B"].flatten(0, 1)
        patch = (cond * repeat_each(batch["mask_A"], k), fake * mask_b, real * mask_b)
        fl, rl = _d_step(nets.D_patch, opts.D_patch, patch, lsgan, so, head)
        losses["D_fake_patch"], losses["D_real_patch"], losses["D_patch"] = fl, rl, (fl + rl) * 0.5

    # 4. G against the just-updated, frozen discriminators; one backward pass, or (decoded one
    # after the other) several whose gradients add up to that of the original's single loss.
    frozen = (nets.D, nets.D_alpha, nets.D_patch)
    for net in frozen:
        set_requires_grad(net, False)
    opts.G.zero_grad(set_to_none=True)
    with so.autocast(A.device):
        pred = nets.D(torch.cat([cond, fake], 1), head)
        pred_patch = None
        if nets.D_patch is not None:
            pred_patch = nets.D_patch(torch.cat([patch[0], patch[1]], 1), head)
    g_gan = gan_loss(pred, True, lsgan)
    g_l1 = F.l1_loss(fake.to(real.dtype), real) * cfg.lambda_L1
    loss_fake = g_gan + g_l1
    if cfg.lambda_region > 0:
        region = expression_region(real, cond, cfg.region_threshold)
        g_region = region_l1(fake.to(real.dtype), real, region) * cfg.lambda_region
        losses["G_region"] = g_region.detach()
        loss_fake = loss_fake + g_region
    if pred_patch is not None:
        g_patch = gan_loss(pred_patch, True, lsgan)
        loss_fake = loss_fake + g_patch
        losses["G_GAN_patch"] = g_patch.detach()
    with so.autocast(A.device):
        pred_alpha = nets.D_alpha(enc.alpha)
    g_alpha = gan_loss(pred_alpha, True, lsgan) * cfg.lambda_A
    loss_alpha = g_alpha / k
    a32 = enc.alpha.to(torch.promote_types(enc.alpha.dtype, torch.float32))
    if cfg.lambda_order > 0:
        g_order = order_hinge(a32, batch["B_index"], cfg.order_margin)
        losses["G_order"] = (g_order * cfg.lambda_order).detach()
        loss_alpha = loss_alpha + g_order * cfg.lambda_order
    if cfg.lambda_position > 0:
        g_position = F.l1_loss(a32, batch["B_position"].to(a32.dtype)) * cfg.lambda_position
        losses["G_position"] = g_position.detach()
        loss_alpha = loss_alpha + g_position
    if joint:
        g_rec = F.l1_loss(rec.to(real.dtype), real) * cfg.lambda_rec
        so.scale(loss_fake + g_rec + loss_alpha).backward()
    else:  # free the fakes' graph before decoding the reconstructions
        so.scale(loss_fake).backward()
        with so.autocast(A.device):
            rec = decode_recs(G, leaf_b)
        g_rec = F.l1_loss(rec.to(real.dtype), real) * cfg.lambda_rec
        so.scale(g_rec).backward()
        pairs = [
            (t, leaf.grad)
            for t, leaf in zip(
                enc.enc_a.tensors() + enc.enc_b.tensors(),
                leaf_a.tensors() + leaf_b.tensors(),
                strict=True,
            )
            if leaf.grad is not None
        ]
        roots = [so.scale(loss_alpha)] + [t for t, _ in pairs]
        torch.autograd.backward(roots, [None] + [g for _, g in pairs])
    so.step(G, opts.G)
    if nets.G_ema is not None:
        nets.G_ema.update_parameters(G)
    for net in frozen:
        set_requires_grad(net, True)
    if so.scaler is not None:
        so.scaler.update()

    losses.update(
        G=(loss_fake + g_rec + loss_alpha).detach(),
        G_GAN_D1=g_gan.detach(),
        G_L1=g_l1.detach(),
        img_recons=g_rec.detach(),
        G_GAN_D_alpha=g_alpha.detach(),
        alpha_mean=alpha.detach().mean(),
    )
    return losses
