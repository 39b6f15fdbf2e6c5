"""The original code's call pattern, kept as a yardstick for equivalence tests and benchmarks.

Not part of the package: it lives with the tests that hold ``core.step.train_step`` to it
(``tests/test_model.py``, ``tests/test_train.py``); ``benchmarks/speed.py`` and
``benchmarks/quality.py --reference`` put this folder on ``sys.path`` to time and train it.

Per iteration it makes 2 + 2K full generator calls (G(A;1,0), G(A;0,1), and per target
G(B_k;1,0) and G(A;1,alpha_k)) and loops the targets one by one, exactly as the original did;
per generated frame one full call. ``train_step`` must give the same losses and
gradients (with noise and dropout off) while doing far less work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from affinegan.config import TrainConfig
from affinegan.core.build import Nets, Optimizers
from affinegan.core.losses import gan_loss
from affinegan.core.networks import Generator


def reference_train_step(
    nets: Nets, opts: Optimizers, batch: dict, cfg: TrainConfig
) -> dict[str, torch.Tensor]:
    """One iteration as the original computed it (batch of one clip)."""
    G, A, lsgan, K = nets.G, batch["A"], cfg.lsgan, batch["B"].shape[1]
    _, f0 = G(A, 1.0, 0.0)  # the original also decoded this image, then discarded it
    _, fr = G(A, 0.0, 1.0)
    fakes, recs, alphas = [], [], []
    for k in range(K):
        rec, fk = G(batch["B"][:, k], 1.0, 0.0)
        alpha = torch.abs(torch.sum((fk - f0) * fr)) / (fr.norm() + 1e-6)
        alphas.append(alpha.view(1))
        fakes.append(G(A, 1.0, alpha.item())[0])
        recs.append(rec)
    alpha = torch.stack(alphas, dim=1)
    out: dict[str, torch.Tensor] = {}
    u = torch.rand(1, K, dtype=A.dtype, device=A.device)
    loss = (
        gan_loss(nets.D_alpha(alpha.detach()), False, lsgan)
        + gan_loss(nets.D_alpha(u), True, lsgan)
    ) * (0.5 * cfg.lambda_A)
    opts.D_alpha.zero_grad()
    loss.backward()
    opts.D_alpha.step()
    out["D_alpha"] = loss.detach()

    patch = nets.D_patch is not None
    mA = A * batch["mask_A"] if patch else None
    pairs = [(nets.D, opts.D, False, "D")]
    if patch:
        pairs.append((nets.D_patch, opts.D_patch, True, "D_patch"))
    for D, opt, masked, key in pairs:
        total = 0.0
        for k in range(K):
            m = batch["mask_B"][:, k] if masked else 1.0
            cond = mA if masked else A
            pf = D(torch.cat([cond, (fakes[k] * m).detach()], 1))
            pr = D(torch.cat([cond, batch["B"][:, k] * m], 1))
            total = total + (gan_loss(pf, False, lsgan) + gan_loss(pr, True, lsgan)) * 0.5
        opt.zero_grad()
        (total / K).backward()
        opt.step()
        out[key] = (total / K).detach()

    for net in (nets.D, nets.D_alpha, nets.D_patch):
        if net is not None:
            net.requires_grad_(False)
    loss_g = 0.0
    for k in range(K):
        B = batch["B"][:, k]
        loss_g = loss_g + gan_loss(nets.D(torch.cat([A, fakes[k]], 1)), True, lsgan)
        if patch:
            mB = batch["mask_B"][:, k]
            loss_g = loss_g + gan_loss(nets.D_patch(torch.cat([mA, fakes[k] * mB], 1)), True, lsgan)
        loss_g = loss_g + F.l1_loss(fakes[k], B) * cfg.lambda_L1
        loss_g = loss_g + F.l1_loss(recs[k], B) * cfg.lambda_rec
    loss_g = (loss_g + gan_loss(nets.D_alpha(alpha), True, lsgan) * cfg.lambda_A) / K
    opts.G.zero_grad()
    loss_g.backward()
    opts.G.step()
    for net in (nets.D, nets.D_alpha, nets.D_patch):
        if net is not None:
            net.requires_grad_(True)
    out["G"] = loss_g.detach()
    return out


@torch.no_grad()
def reference_frames(G: Generator, x: torch.Tensor, alphas: list[float]) -> torch.Tensor:
    """The original's generation: one full generator call per frame. x: (1, C, H, W)."""
    return torch.cat([G(x, 1.0, a)[0] for a in alphas])
