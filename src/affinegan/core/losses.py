"""AffineGAN's objective, term by term, as functions of discriminator scores and images.

docs/method.md, "Losses and the training step", writes out the paper's losses; the options beyond
it (``--lambda_order``, ``--lambda_region``, ``--lambda_keep``, which ``--preset expressive``
sets) are off by default. Nothing here runs a network or a backward pass: ``train_step``
decides batching and backward order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from affinegan.config import TrainConfig
from affinegan.core.region import region_margin


def gan_loss(pred: torch.Tensor, real: bool, lsgan: bool) -> torch.Tensor:
    """BCE on sigmoid outputs (original default) or least squares, against all-real/all-fake.

    Always in float32 outside autocast (BCE on half-precision probabilities is unsafe).
    """
    with torch.autocast(pred.device.type, enabled=False):
        pred = pred.float() if pred.dtype in (torch.float16, torch.bfloat16) else pred
        target = torch.ones_like(pred) if real else torch.zeros_like(pred)
        return F.mse_loss(pred, target) if lsgan else F.binary_cross_entropy(pred, target)


def d_alpha_loss(
    pred_fake: torch.Tensor, pred_real: torch.Tensor, cfg: TrainConfig
) -> torch.Tensor:
    """Step 1 of docs/method.md "Losses and the training step": D_alpha's scores of the inferred
    intensities (fake) and of U[0, 1) draws (real)."""
    fake, real = gan_loss(pred_fake, False, cfg.lsgan), gan_loss(pred_real, True, cfg.lsgan)
    return (fake + real) * 0.5 * cfg.lambda_A


def d_pair_losses(
    pred_fake: torch.Tensor, pred_real: torch.Tensor, lsgan: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 2 and 3 ("Losses and the training step"): a PatchGAN's losses on its scores of fake
    and real pairs; its update takes their mean."""
    return gan_loss(pred_fake, False, lsgan), gan_loss(pred_real, True, lsgan)


def g_fake_terms(
    pred: torch.Tensor,
    pred_patch: torch.Tensor | None,
    fake: torch.Tensor,
    real: torch.Tensor,
    cond: torch.Tensor,
    cfg: TrainConfig,
) -> dict[str, torch.Tensor]:
    """Step 4's terms on the fakes ("Losses and the training step"): GAN(D), lambda_L1 * L1,
    with ``--lambda_region`` the region L1, with ``--lambda_keep`` the L1 to the input outside
    the region, with mouth masks GAN(D_patch). Their sum is G's loss on the fakes (``total``)."""
    fake = fake.to(real.dtype)
    terms = {
        "G_GAN_D1": gan_loss(pred, True, cfg.lsgan),
        "G_L1": F.l1_loss(fake, real) * cfg.lambda_L1,
    }
    if cfg.lambda_region > 0 or cfg.lambda_keep > 0:
        region = expression_region(real, cond, cfg.region_threshold)
        if cfg.lambda_region > 0:
            terms["G_region"] = region_l1(fake, real, region) * cfg.lambda_region
        if cfg.lambda_keep > 0:
            terms["G_keep"] = region_l1(fake, cond, 1.0 - region) * cfg.lambda_keep
    if pred_patch is not None:
        terms["G_GAN_patch"] = gan_loss(pred_patch, True, cfg.lsgan)
    return terms


def g_rec_loss(rec: torch.Tensor, real: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Step 4's reconstruction term: ``lambda_rec * L1(rec_k, B_k)``, the targets rebuilt from
    their base stream alone."""
    return F.l1_loss(rec.to(real.dtype), real) * cfg.lambda_rec


def g_alpha_loss(
    pred_alpha: torch.Tensor,
    alpha: torch.Tensor,
    cfg: TrainConfig,
    index: torch.Tensor | None,
    position: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Step 4's terms on the intensities alpha (N, K): ``lambda_A * GAN(D_alpha(alpha)) / K``,
    plus with ``--lambda_order`` the order hinge on the targets' frame numbers ``index`` and
    with ``--lambda_position`` the L1 to their places in the clip ``position`` (both (N, K)).
    Returns the loss and its named terms (the GAN term before the division by K).

    Why the position term: D_alpha's U[0, 1) prior fits targets drawn from a whole video, but
    a neutral + peak photo pair has one target, its peak, whose inferred alpha the prior then
    spreads over [0, 1) from person to person (0.08 to 2.16 on held-out London faces after
    3,000 steps), so alpha 1 means a different smile for each face; the L1 puts every peak at
    1."""
    g_alpha = gan_loss(pred_alpha, True, cfg.lsgan) * cfg.lambda_A
    terms = {"G_GAN_D_alpha": g_alpha}
    loss = g_alpha / alpha.shape[1]
    a32 = alpha.to(torch.promote_types(alpha.dtype, torch.float32))
    if cfg.lambda_order > 0:
        assert index is not None, "--lambda_order needs the targets' frame numbers"
        terms["G_order"] = order_hinge(a32, index, cfg.order_margin) * cfg.lambda_order
        loss = loss + terms["G_order"]
    if cfg.lambda_position > 0:
        assert position is not None, "--lambda_position needs the targets' places in the clip"
        terms["G_position"] = F.l1_loss(a32, position.to(a32.dtype)) * cfg.lambda_position
        loss = loss + terms["G_position"]
    return loss, terms


def total(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The sum of named terms, left to right (the order fixes the float rounding)."""
    first, *rest = terms.values()
    return sum(rest, first)


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
