"""The discriminators of AffineGAN: the PatchGAN on (condition, image) pairs and the alpha MLP.

Kept apart from networks.py (the generator) so that each module stays readable; the attribute
names (``model``, ``net``) reproduce the original code's state_dict keys, so its checkpoints load
unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from affinegan.core.networks import norm_layer


class PatchDiscriminator(nn.Module):
    """PatchGAN on a (condition, image) pair; the original's NLayerDiscriminator layout."""

    def __init__(
        self,
        input_nc: int = 6,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        sigmoid: bool = True,
        heads: int = 1,
    ) -> None:
        super().__init__()
        bias = norm == "instance"
        seq: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            seq += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        seq.append(nn.Conv2d(ndf * mult, heads, 4, 1, 1))
        if sigmoid:
            seq.append(nn.Sigmoid())
        self.model = nn.Sequential(*seq)
        self.heads = heads

    def forward(self, x: torch.Tensor, head: torch.Tensor | None = None) -> torch.Tensor:
        """Patch scores (M, 1, h, w); with several heads (one per expression) each sample is
        judged by the head ``head[i]`` of its expression, so real smiles are not compared with
        real blinks."""
        out = self.model(x)
        if self.heads == 1:
            return out
        if head is None:
            raise ValueError("a discriminator with one head per expression needs the expressions")
        pick = (
            torch.as_tensor(head, device=out.device)
            .reshape(-1, 1, 1, 1)
            .expand(len(out), 1, *out.shape[2:])
        )
        return out.gather(1, pick)


class AlphaDiscriminator(nn.Module):
    """MLP that tells inferred intensity vectors (K values) from samples of U[0, 1)."""

    def __init__(self, num_alphas: int = 5, sigmoid: bool = True, heads: int = 1) -> None:
        super().__init__()
        k = num_alphas
        seq: list[nn.Module] = [
            nn.Linear(k, k),
            nn.LeakyReLU(0.2),
            nn.Linear(k, k),
            nn.LeakyReLU(0.2),
            nn.Linear(k, heads),
        ]
        if sigmoid:
            seq.append(nn.Sigmoid())
        self.net = nn.Sequential(*seq)
        self.heads = heads

    def forward(self, alphas: torch.Tensor, head: torch.Tensor | None = None) -> torch.Tensor:
        """(N, 1) scores; with a head per expression (multi-expression runs) each clip's
        intensities are judged by its expression's head."""
        out = self.net(alphas)
        if self.heads == 1:
            return out
        if head is None:
            raise ValueError("a D_alpha with one head per expression needs the expressions")
        return out.gather(1, torch.as_tensor(head, device=out.device).reshape(-1, 1))
