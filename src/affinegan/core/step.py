"""The schedule of one training step: which batches the networks run on and in which order
gradients flow, for memory and speed.

The method: docs/method.md, "Losses and the training step". What each loss is lives in
losses.py (pure functions of scores and images), how alpha is inferred in intensity.py; the step
below decides only batching and backward order. fake_k = G(A; 1, alpha_k), rec_k = G(B_k; 1, 0):
the original ran 2 + 2K full generator calls for this; here the fakes and the reconstructions
are each decoded as one batch (both in a single batch when they are small); the math, including
where gradients flow, is unchanged (tests/test_model.py runs tests/reference.py's step beside it).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from affinegan.config import TrainConfig
from affinegan.core import losses
from affinegan.core.build import Nets, Optimizers
from affinegan.core.intensity import Encoded, encode_batch
from affinegan.core.networks import Encoding, Generator, repeat_each


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


def decode_fakes(G: Generator, enc_a: Encoding, alpha: torch.Tensor) -> torch.Tensor:
    """fake_k = G(A; 1, alpha_k) for every clip and target: (N*K, C, H, W). The caller detaches
    alpha (the original) or lets the image losses reach the encoders through it
    (--alpha_grad)."""
    return G.decode(enc_a, 1.0, alpha.flatten())


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
    """``decode_fakes`` and ``decode_recs`` as one batch (alpha as given, like decode_fakes)."""
    out = G.decode_parts([(enc_a, alpha.flatten()), (enc_b, None)], 1.0)
    return out.split(alpha.numel())


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
    fake = decode_fakes(G, enc.enc_a, enc.alpha.detach())
    return Forward(enc.alpha, fake, decode_recs(G, enc.enc_b))


# The step's schedule: which batches the networks run on and in which order gradients flow
# (for memory and speed). What each loss is lives in losses.py; nothing below changes the math.


def set_requires_grad(net: nn.Module | None, flag: bool) -> None:
    if net is not None:
        net.requires_grad_(flag)


def pair_scores(
    D: nn.Module,
    cond: torch.Tensor,
    images: tuple[torch.Tensor, ...],
    so: StepOptions,
    head: torch.Tensor | None = None,
) -> torch.Tensor:
    """A pair discriminator (D, D_patch) on (cond, image) for each of ``images``, as one batch;
    ``head``: each pair's expression, whose output map judges it (multi-expression)."""
    pairs = [torch.cat([cond, image], 1) for image in images]
    heads = None if head is None else torch.cat([head] * len(images))
    with so.autocast(cond.device):
        return D(torch.cat(pairs) if len(pairs) > 1 else pairs[0], heads)


def alpha_scores(
    D_alpha: nn.Module,
    alphas: tuple[torch.Tensor, ...],
    so: StepOptions,
    head: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """D_alpha on each of ``alphas`` (N, K): a call each, under one autocast, so that under
    ``--amp`` they share one cast of the weights (and its gradient's rounding), as originally;
    ``head``: each clip's expression (used by a D_alpha with a head per expression)."""
    with so.autocast(alphas[0].device):
        return [D_alpha(alpha, head) for alpha in alphas]


@dataclass
class StepBatch:
    """The batch as the discriminators and losses see it, one row per target (N*K, C, H, W):
    its clip's neutral face (the condition), the real target and the fake; ``patch``: the same
    three masked to the mouth (None without ``D_patch``); the targets' frame numbers in their
    clips and their places there (0 the neutral frame, 1 the last), (N, K), for the order and
    position losses."""

    cond: torch.Tensor
    real: torch.Tensor
    fake: torch.Tensor
    patch: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None
    index: torch.Tensor | None
    position: torch.Tensor | None
    head: torch.Tensor | None = None  # each row's expression (multi-expression), (N*K,)
    clip_head: torch.Tensor | None = None  # each clip's expression, (N,)


def step_batch(batch: dict, fake: torch.Tensor, masked: bool, multi: bool = False) -> StepBatch:
    """Everything but the encoders' input is read from the batch here, once."""
    A, B = batch["A"], batch["B"]
    k = B.shape[1]
    real, cond = B.flatten(0, 1), repeat_each(A, k)
    patch = None
    if masked:
        mask_b = batch["mask_B"].flatten(0, 1)
        patch = (cond * repeat_each(batch["mask_A"], k), fake * mask_b, real * mask_b)
    clip_head = batch["expression"] if multi else None
    head = None if clip_head is None else repeat_each(clip_head, k)
    index, position = batch.get("B_index"), batch.get("B_position")
    return StepBatch(cond, real, fake, patch, index, position, head, clip_head)


@dataclass
class Decoded:
    """The generator's pass of a step. Decoded jointly, ``rec`` is there and ``leaves`` None;
    one after the other, the decoders ran on ``leaves`` (detached copies of the encodings) and
    ``rec`` is decoded later, after the fakes' backward has freed their graph. ``alpha_leaf``:
    the detached copy of the alphas the fakes were decoded at, when their gradient is wanted
    (``--alpha_grad`` decoded one after the other)."""

    enc: Encoded
    fake: torch.Tensor
    rec: torch.Tensor | None
    leaves: tuple[Encoding, Encoding] | None
    alpha_leaf: torch.Tensor | None = None


def decode_for_step(
    G: Generator, batch: dict, joint: bool, so: StepOptions, alpha_grad: bool = False
) -> Decoded:
    """Encode the batch and decode the fakes (with the reconstructions when ``joint``); with
    ``alpha_grad`` the fakes keep the alphas' graph (the image losses train the encoders
    through them)."""
    expression = batch["expression"] if G.expressions > 1 else None
    with so.autocast(batch["A"].device):
        enc = encode_batch(G, batch["A"], batch["B"], expression)
        alpha = enc.alpha if alpha_grad else enc.alpha.detach()
        if joint:
            fake, rec = decode_fakes_and_recs(G, enc.enc_a, enc.enc_b, alpha)
            return Decoded(enc, fake, rec, None)
        leaf_a = enc.enc_a.map(lambda t: t.detach().requires_grad_(t.requires_grad))
        leaf_b = enc.enc_b.map(lambda t: t.detach().requires_grad_(t.requires_grad))
        leaf = enc.alpha.detach().requires_grad_(alpha.requires_grad) if alpha_grad else None
        fake = decode_fakes(G, leaf_a, alpha if leaf is None else leaf)
        return Decoded(enc, fake, None, (leaf_a, leaf_b), leaf)


def update(net: nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, so: StepOptions) -> None:
    """Backward of ``loss`` into ``net`` alone and one optimiser step."""
    opt.zero_grad(set_to_none=True)
    so.scale(loss).backward()
    so.step(net, opt)


def d_alpha_step(
    nets: Nets,
    opts: Optimizers,
    alpha: torch.Tensor,
    cfg: TrainConfig,
    so: StepOptions,
    head: torch.Tensor | None = None,
) -> torch.Tensor:
    """Step 1: D_alpha on the inferred intensities (fake) against U[0, 1) draws (real)."""
    u = torch.rand(alpha.shape, device=alpha.device, dtype=alpha.dtype)
    pred_fake, pred_real = alpha_scores(nets.D_alpha, (alpha.detach(), u), so, head)
    loss = losses.d_alpha_loss(pred_fake, pred_real, cfg)
    update(nets.D_alpha, opts.D_alpha, loss, so)
    return loss.detach()


def d_step(
    D: nn.Module,
    opt: torch.optim.Optimizer,
    pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    lsgan: bool,
    so: StepOptions,
    head: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 2 and 3: one PatchGAN update on (detached) fake and real pairs (cond, fake, real)."""
    cond, fake, real = pairs
    pred_fake, pred_real = pair_scores(D, cond, (fake.detach(), real), so, head).chunk(2)
    loss_fake, loss_real = losses.d_pair_losses(pred_fake, pred_real, lsgan)
    update(D, opt, (loss_fake + loss_real) * 0.5, so)
    return loss_fake.detach(), loss_real.detach()


def d_steps(
    nets: Nets, opts: Optimizers, sb: StepBatch, lsgan: bool, so: StepOptions
) -> dict[str, torch.Tensor]:
    """Steps 2 and 3: D on the pairs, then D_patch on the masked pairs; their losses, named."""
    out: dict[str, torch.Tensor] = {}
    pairs = (sb.cond, sb.fake, sb.real)
    out["D_fake"], out["D_real"] = d_step(nets.D, opts.D, pairs, lsgan, so, sb.head)
    out["D"] = (out["D_fake"] + out["D_real"]) * 0.5
    if nets.D_patch is not None:
        assert opts.D_patch is not None and sb.patch is not None
        fl, rl = d_step(nets.D_patch, opts.D_patch, sb.patch, lsgan, so, sb.head)
        out["D_fake_patch"], out["D_real_patch"], out["D_patch"] = fl, rl, (fl + rl) * 0.5
    return out


def backward_g(
    G: Generator,
    dec: Decoded,
    loss_fake: torch.Tensor,
    loss_alpha: torch.Tensor,
    real: torch.Tensor,
    cfg: TrainConfig,
    so: StepOptions,
) -> torch.Tensor:
    """Back-propagate G's loss (fakes + reconstructions + intensities); returns the
    reconstruction term. Jointly decoded: one backward. Otherwise the fakes' graph is freed by
    its own backward before the reconstructions are decoded, and the encoders receive the
    summed gradient of the leaves once at the end: the same sums the original formed."""
    if dec.leaves is None:
        assert dec.rec is not None
        loss_rec = losses.g_rec_loss(dec.rec, real, cfg)
        so.scale(loss_fake + loss_rec + loss_alpha).backward()
        return loss_rec
    so.scale(loss_fake).backward()
    leaf_a, leaf_b = dec.leaves
    with so.autocast(real.device):
        rec = decode_recs(G, leaf_b)
    loss_rec = losses.g_rec_loss(rec, real, cfg)
    so.scale(loss_rec).backward()
    roots_leaves = list(
        zip(
            dec.enc.enc_a.tensors() + dec.enc.enc_b.tensors(),
            leaf_a.tensors() + leaf_b.tensors(),
            strict=True,
        )
    )
    if dec.alpha_leaf is not None:
        roots_leaves.append((dec.enc.alpha, dec.alpha_leaf))
    grads = [(t, leaf.grad) for t, leaf in roots_leaves if leaf.grad is not None]
    roots = [so.scale(loss_alpha)] + [t for t, _ in grads]
    torch.autograd.backward(roots, [None] + [g for _, g in grads])
    return loss_rec


# G's terms that every step reports, in the order the loss line has listed them since the
# original; the optional ones (region, keep, patch, order) come before G's total.
G_TERMS = ("G_GAN_D1", "G_L1", "img_recons", "G_GAN_D_alpha")


def g_step(
    nets: Nets, opts: Optimizers, dec: Decoded, sb: StepBatch, cfg: TrainConfig, so: StepOptions
) -> dict[str, torch.Tensor]:
    """Step 4: G against the just-updated, frozen discriminators; its losses, named."""
    frozen = (nets.D, nets.D_alpha, nets.D_patch)
    for net in frozen:
        set_requires_grad(net, False)
    opts.G.zero_grad(set_to_none=True)
    pred = pair_scores(nets.D, sb.cond, (sb.fake,), so, sb.head)
    pred_patch = None
    if nets.D_patch is not None:
        assert sb.patch is not None
        pred_patch = pair_scores(nets.D_patch, sb.patch[0], (sb.patch[1],), so, sb.head)
    fake_terms = losses.g_fake_terms(pred, pred_patch, sb.fake, sb.real, sb.cond, cfg)
    alpha = dec.enc.alpha
    (pred_alpha,) = alpha_scores(nets.D_alpha, (alpha,), so, sb.clip_head)
    loss_alpha, alpha_terms = losses.g_alpha_loss(pred_alpha, alpha, cfg, sb.index, sb.position)
    loss_fake = losses.total(fake_terms)
    loss_rec = backward_g(nets.G, dec, loss_fake, loss_alpha, sb.real, cfg, so)
    so.step(nets.G, opts.G)
    if nets.G_ema is not None:
        nets.G_ema.update_parameters(nets.G)
    for net in frozen:
        set_requires_grad(net, True)
    if so.scaler is not None:
        so.scaler.update()
    named = {**fake_terms, "img_recons": loss_rec, **alpha_terms}
    out = {k: v for k, v in named.items() if k not in G_TERMS}
    out["G"] = loss_fake + loss_rec + loss_alpha
    out.update({k: named[k] for k in G_TERMS}, alpha_mean=alpha.detach().mean())
    return {k: v.detach() for k, v in out.items()}


def train_step(
    nets: Nets, opts: Optimizers, batch: dict, cfg: TrainConfig, so: StepOptions | None = None
) -> dict[str, torch.Tensor]:
    """One iteration in the original's order: D_alpha, D, D_patch, then G (docs/method.md,
    "Losses and the training step"). Above ``JOINT_DECODE_MAX`` fakes and reconstructions are
    decoded one after the other (see ``backward_g``); either way the gradients are the sums the
    original formed. Returns detached losses (no host sync here; read them only when printing).
    """
    so = so or StepOptions()
    joint = decode_jointly(batch["B"], cfg)
    dec = decode_for_step(nets.G, batch, joint, so, cfg.alpha_grad)
    sb = step_batch(batch, dec.fake, nets.D_patch is not None, nets.G.expressions > 1)
    out = {"D_alpha": d_alpha_step(nets, opts, dec.enc.alpha, cfg, so, sb.clip_head)}
    out.update(d_steps(nets, opts, sb, cfg.lsgan, so))
    out.update(g_step(nets, opts, dec, sb, cfg, so))
    return out
