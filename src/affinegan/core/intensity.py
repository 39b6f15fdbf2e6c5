"""Intensity inference (docs/method.md, "Intensity inference"): the alpha of each target frame,
read from the encoders' features. Per clip: f0 = f(A; 1, 0), fr = f(A; 0, 1), fk = f(B_k; 1, 0)
and ``alpha_k = |<fk - f0, fr>| / (||fr|| + 1e-6)``.

The original ran a full generator call per feature; here A is encoded once (both streams) and
the K targets once (base stream only, in one batch with A's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from affinegan.core.networks import Encoding, Generator


def infer_alpha(f0: torch.Tensor, fr: torch.Tensor, fk: torch.Tensor) -> torch.Tensor:
    """Intensity of each target: projection of its base code's offset onto the residual code.

    f0, fr: (N, ...) features of the neutral faces; fk: (N, K, ...) of the targets -> (N, K).
    """
    n, k = fk.shape[:2]
    f0, fr, fk = f0.reshape(n, 1, -1), fr.reshape(n, 1, -1), fk.reshape(n, k, -1)
    return ((fk - f0) * fr).sum(-1).abs() / (fr.flatten(1).norm(dim=1, keepdim=True) + 1e-6)


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
    fb = G.feature(enc_b, 1.0, None)
    return Encoded(enc_a, enc_b, infer_alpha(f0, fr, fb.unflatten(0, (n, k))))
