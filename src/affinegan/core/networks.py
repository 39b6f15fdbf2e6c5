"""The generator of AffineGAN: the two-stream U-Net (the discriminators are in discriminators.py).

Paper mapping (Shen et al. 2019, Sec. 3): an image x is encoded by a *base* stream and a
*residual* stream; frame t is decoded from the affine mix ``z_b(x) + alpha_t * z_r(x)``.
Here the mix ``b * base + t * res`` happens at every U-Net level (the skip tensors) and at the
bottleneck. Because the two streams never see ``(b, t)``, ``Generator.encode`` runs once per
image and ``Generator.decode`` turns one encoding into any number of frames.

Module and parameter names reproduce the original code's state_dict keys
(``model.sub.down_base.1.weight`` ...), so its checkpoints load unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from affinegan.config import UNET_DEPTHS, canonical_netg


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The --norm layer; shared by the generator and the PatchGAN."""
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    raise ValueError(f"unknown --norm {norm!r}; choose instance or batch")


class UnetLevel(nn.Module):
    """One U-Net level: two down convolutions (base, residual) and the shared up path."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        sub: UnetLevel | None = None,
        outermost: bool = False,
        norm: str = "instance",
        dropout: bool = False,
        blend: bool = False,
        warp: bool = False,
        expressions: int = 1,
    ) -> None:
        super().__init__()
        input_nc = outer_nc if input_nc is None else input_nc
        bias = norm == "instance"  # a conv followed by InstanceNorm keeps its bias (original)
        innermost = sub is None

        def down() -> nn.Sequential:
            conv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=bias)
            if outermost:
                return nn.Sequential(conv)
            if innermost:
                return nn.Sequential(nn.LeakyReLU(0.2), conv)
            return nn.Sequential(nn.LeakyReLU(0.2), conv, norm_layer(norm, inner_nc))

        self.down_base = down()
        if expressions == 1:
            self.down_res = down()
        else:  # one residual stream per expression, each the paper's (docs/multi-expression.md)
            self.down_res_expr = nn.ModuleList(down() for _ in range(expressions))
        up_in = inner_nc if innermost else inner_nc * 2
        if outermost:
            self.up_all = nn.Sequential(
                nn.ReLU(), nn.ConvTranspose2d(up_in, outer_nc, 4, 2, 1), nn.Tanh()
            )
            if blend:  # --blend: one more map, the mask that mixes the output with the input
                self.up_mask = nn.ConvTranspose2d(up_in, 1, 4, 2, 1)
            if warp:  # --warp: a flow field that moves the input's pixels before the blend
                self.up_flow = nn.ConvTranspose2d(up_in, 2, 4, 2, 1)
        else:
            up = [nn.ReLU(), nn.ConvTranspose2d(up_in, outer_nc, 4, 2, 1, bias=bias)]
            up.append(norm_layer(norm, outer_nc))
            if dropout:
                up.append(nn.Dropout(0.5))
            self.up_all = nn.Sequential(*up)
        self.sub = sub


@dataclass
class Encoding:
    """Both streams of an image at every level: what ``decode`` needs for any (b, t).

    ``skips_*[i]`` is the input of inner level i+1 (outermost first); ``bottom_*`` is the
    innermost down output before mixing. ``res`` parts are None for a base-only encoding.
    ``image`` is the encoded image itself, which a ``--blend`` generator mixes into its output.
    """

    skips_base: list[torch.Tensor]
    skips_res: list[torch.Tensor] | None
    bottom_base: torch.Tensor
    bottom_res: torch.Tensor | None
    image: torch.Tensor | None = None

    def tensors(self) -> list[torch.Tensor]:
        """Every tensor the encoders computed, in a fixed order (the image is not one)."""
        res = (self.skips_res or []) + ([self.bottom_res] if self.bottom_res is not None else [])
        return [*self.skips_base, self.bottom_base, *res]

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Encoding:
        """The same encoding with ``fn`` applied to every tensor, the image included."""
        res = self.skips_res
        return Encoding(
            [fn(s) for s in self.skips_base],
            None if res is None else [fn(s) for s in res],
            fn(self.bottom_base),
            None if self.bottom_res is None else fn(self.bottom_res),
            None if self.image is None else fn(self.image),
        )

    def split(self, n: int) -> tuple[Encoding, Encoding]:
        """The first n samples (with both streams) and the rest, base stream only: the two
        halves of an encoding whose residual stream covers only its first n samples."""
        if self.skips_res is None or self.bottom_res is None or len(self.bottom_res) != n:
            raise ValueError(f"split({n}) needs a residual stream over exactly {n} samples")
        im = self.image
        first = Encoding(
            [s[:n] for s in self.skips_base],
            self.skips_res,
            self.bottom_base[:n],
            self.bottom_res,
            None if im is None else im[:n],
        )
        rest = Encoding(
            [s[n:] for s in self.skips_base],
            None,
            self.bottom_base[n:],
            None,
            None if im is None else im[n:],
        )
        return first, rest


def repeat_each(t: torch.Tensor, k: int) -> torch.Tensor:
    """(N, ...) -> (N*k, ...) with every sample repeated k times consecutively."""
    return t.unsqueeze(1).expand(t.shape[0], k, *t.shape[1:]).flatten(0, 1)


def _cat(ts: list[torch.Tensor]) -> torch.Tensor:
    """``torch.cat`` along the batch, without copying a lone tensor."""
    return ts[0] if len(ts) == 1 else torch.cat(ts)


class Generator(nn.Module):
    """Two-stream U-Net. ``G(x, b, t)`` returns ``(image, feature)`` like the original.

    ``blend=True`` (not in the original) adds a mask map ``m`` at the output and returns
    ``m * tanh(out) + (1 - m) * x``: pixels the expression leaves alone can be copied from the
    input instead of re-synthesised, which a small, briefly trained decoder does poorly
    (docs/results.md). Its weights add the key ``model.up_mask``; the others are unchanged.
    """

    def __init__(
        self,
        netG: str = "unet_256",
        ngf: int = 64,
        input_nc: int = 3,
        output_nc: int = 3,
        norm: str = "instance",
        dropout: bool = True,
        noise_std: float = 0.01,
        blend: bool = False,
        warp: bool = False,
        expressions: int = 1,
    ) -> None:
        super().__init__()
        num_downs = UNET_DEPTHS[canonical_netg(netG)]
        if expressions < 1:
            raise ValueError(f"a generator needs at least one expression, got {expressions}")
        kw = {"norm": norm, "expressions": expressions}
        level = UnetLevel(ngf * 8, ngf * 8, **kw)
        for _ in range(num_downs - 5):
            level = UnetLevel(ngf * 8, ngf * 8, sub=level, dropout=dropout, **kw)
        for mult in (4, 2, 1):
            level = UnetLevel(ngf * mult, ngf * mult * 2, sub=level, **kw)
        self.model = UnetLevel(
            output_nc,
            ngf,
            input_nc=input_nc,
            sub=level,
            outermost=True,
            blend=blend,
            warp=warp,
            **kw,
        )
        self.expressions = expressions
        self.expression = 0  # what encode() animates when no expression is given
        self.blend = blend
        self.warp = warp
        self.norm = norm
        self.noise_std = noise_std
        levels = [self.model]
        while levels[-1].sub is not None:
            levels.append(levels[-1].sub)
        self._levels = levels  # plain list: outermost first, innermost last

    def encode(
        self, x: torch.Tensor, residual: bool = True, expression: torch.Tensor | None = None
    ) -> Encoding:
        """Run the down paths once. ``residual=False`` skips the residual stream (t = 0 decodes).
        ``expression``: each sample's expression index, which picks its residual stream in a
        multi-expression generator (one index for all, or one per sample; default
        ``self.expression``)."""
        return self._encode(x, len(x) if residual else 0, expression)

    def encode_pair(
        self, x: torch.Tensor, y: torch.Tensor, expression: torch.Tensor | None = None
    ) -> tuple[Encoding, Encoding]:
        """``encode(x, expression=...)`` and ``encode(y, residual=False)``, the base stream over
        both as one batch: fewer, larger convolutions. Separately when a BatchNorm layer would
        pool x's statistics with y's."""
        if self.norm == "batch":
            return self.encode(x, expression=expression), self.encode(y, residual=False)
        return self._encode(torch.cat([x, y]), len(x), expression).split(len(x))

    def encode_mix(self, x: torch.Tensor, expressions: Sequence[int]) -> Encoding:
        """The base stream of x once and the residual stream of every listed expression: the
        codes of ``z_b + sum_e alpha_e z_r,e``. Decode it with ``t`` of shape (frames,
        len(expressions)): one intensity per expression per frame."""
        skips_b, bottom_b = self._down(x, "down_base")
        res = [self._residual(x, torch.full((len(x),), e)) for e in expressions]
        if not res:
            raise ValueError("encode_mix needs at least one expression")

        def stack(ts: list[torch.Tensor]) -> torch.Tensor:  # sample-major: (n * E, ...)
            return torch.stack(ts, 1).flatten(0, 1)

        skips_r = [stack([r[0][i] for r in res]) for i in range(len(skips_b))]
        bottom_r = stack([r[1] for r in res])
        return Encoding(skips_b, skips_r, bottom_b, bottom_r, x if self.blend else None)

    def _encode(
        self, x: torch.Tensor, n_res: int, expression: torch.Tensor | None = None
    ) -> Encoding:
        """Both streams for the first ``n_res`` samples of x, the base stream for all of them."""
        skips_b, bottom_b = self._down(x, "down_base")
        skips_r, bottom_r = self._residual(x[:n_res], expression) if n_res else (None, None)
        return Encoding(skips_b, skips_r, bottom_b, bottom_r, x if self.blend else None)

    def _down(
        self, x: torch.Tensor, path: str, expression: int = 0
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """One down path (``down_base``, ``down_res`` or expression e's ``down_res_expr[e]``)
        over every level: the skip tensors (outermost first) and the innermost output."""
        skips = []
        for i, level in enumerate(self._levels):
            if i > 0:
                skips.append(x)
            module = getattr(level, path)
            x = module[expression](x) if path == "down_res_expr" else module(x)
        return skips, x

    def _residual(
        self, x: torch.Tensor, expression: torch.Tensor | None
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The residual stream of each sample of x, run by its expression's down path."""
        if self.expressions == 1:
            if expression is not None and bool((torch.as_tensor(expression) != 0).any()):
                raise ValueError("a single-expression generator has only expression 0")
            return self._down(x, "down_res")
        if expression is None:
            expression = torch.tensor(self.expression)
        which = torch.as_tensor(expression).reshape(-1).to(x.device).expand(len(x))
        if bool(((which < 0) | (which >= self.expressions)).any()):
            raise ValueError(f"expression indices must lie in 0..{self.expressions - 1}")
        groups = [int(e) for e in which.unique().tolist()]
        if len(groups) == 1:
            return self._down(x, "down_res_expr", groups[0])
        index = [torch.nonzero(which == e).flatten() for e in groups]
        outs = [self._down(x[i], "down_res_expr", e) for e, i in zip(groups, index, strict=True)]
        back = torch.argsort(torch.cat(index))  # grouped order -> the samples' order

        def join(ts: list[torch.Tensor]) -> torch.Tensor:
            return torch.cat(ts)[back]

        skips = [join([o[0][i] for o in outs]) for i in range(len(outs[0][0]))]
        return skips, join([o[1] for o in outs])

    def _mix(
        self, base: torch.Tensor, res: torch.Tensor | None, b: torch.Tensor, t: torch.Tensor | None
    ) -> torch.Tensor:
        """``b * base + t * res`` plus the training noise. Coefficients with K values per encoded
        sample decode each sample at its K values in a row, broadcast rather than copied; a
        (frames, E) ``t`` mixes the E residual streams of an ``encode_mix`` encoding."""
        if t is not None and t.ndim == 2:
            return self._mix_expressions(base, res, b, t)
        n = len(base)
        lens = {len(c) for c in (b, t) if c is not None and c.ndim and len(c) > 1}
        m = max(lens, default=n)
        if lens - {n, m} or (lens and (n == 0 or m % n)):
            counts = "/".join(str(x) for x in sorted(lens))
            raise ValueError(f"{counts} mixing coefficients for {n} encoded samples")
        if m != n:  # (n, K, ...): a single value broadcasts, n values per sample, m per frame
            base = base.unsqueeze(1)
            res = None if res is None else res.unsqueeze(1)
            b, t = (
                c.reshape(min(len(c), n), -1, 1, 1, 1) if c is not None and c.ndim else c
                for c in (b, t)
            )
        if t is None:
            out = base * b
        elif res is None:
            raise ValueError("decode(t=...) needs an encoding made with residual=True")
        else:
            out = base * b + res * t
        if self.training and self.noise_std > 0:
            out = out + torch.randn_like(out) * self.noise_std
        return out.flatten(0, 1) if m != n else out

    def _mix_expressions(
        self, base: torch.Tensor, res: torch.Tensor | None, b: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """``b * base + sum_e t[:, e] * res_e`` for len(t) / n frames of each of the n
        samples; ``res`` holds E rows per sample, sample-major (``encode_mix``)."""
        n, e = len(base), t.shape[1]
        if res is None or len(res) != n * e or n == 0 or len(t) % n:
            rows = "no" if res is None else len(res)
            raise ValueError(f"{tuple(t.shape)} mixing coefficients for {n} samples x {rows} rows")
        weights = t.reshape(n, -1, e).to(res.dtype)  # -1: the frame count stays free in export
        mixed = torch.bmm(weights, res.reshape(n, e, -1)).reshape(n, -1, *res.shape[1:])
        scale = b.reshape(-1, 1, 1, 1, 1) if b.ndim else b
        out = base.unsqueeze(1) * scale + mixed
        if self.training and self.noise_std > 0:
            out = out + torch.randn_like(out) * self.noise_std
        return out.flatten(0, 1)

    def feature(
        self, enc: Encoding, b: float | torch.Tensor, t: float | torch.Tensor
    ) -> torch.Tensor:
        """The latent feature f whose offsets give the intensity: ReLU of the bottleneck mix,
        plus training noise, as in the original (whose up path's in-place ReLU ran on the
        tensor it returned, so it projected ReLU(mix))."""
        b_, t_ = self._coef(b, enc.bottom_base), self._coef(t, enc.bottom_base)
        return torch.relu(self._mix(enc.bottom_base, enc.bottom_res, b_, t_))

    @staticmethod
    def _coef(v: float | torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
        if v is None:
            return None
        v = torch.as_tensor(v, dtype=like.dtype, device=like.device)
        return v.reshape(-1, 1, 1, 1) if v.ndim == 1 else v

    def decode(
        self,
        enc: Encoding,
        b: float | torch.Tensor = 1.0,
        t: float | torch.Tensor | None = None,
        return_feature: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Decode ``b * base + t * res`` at every level; ``b``/``t`` may hold a value per sample,
        or K per sample (N*K: each sample decoded at its K values in a row). ``return_feature``
        adds the original's feature (the bottleneck's, ReLU of the mix).

        ``t=None`` decodes the base stream alone (the original's ``G(x; 1, 0)`` up to 0 * res).
        """
        return self.decode_parts([(enc, t)], b, return_feature=return_feature)

    def decode_parts(
        self,
        parts: Sequence[tuple[Encoding, float | torch.Tensor | None]],
        b: float | torch.Tensor = 1.0,
        return_feature: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``decode(enc, b, t)`` of every ``(enc, t)`` part as one batch, in order. Each part is
        mixed on its own at every level and only the mixes are joined, so no joined copy of the
        encodings is ever held. ``b`` is one number for all parts."""
        if len(parts) > 1 and torch.is_tensor(b) and b.numel() > 1:
            raise ValueError("decode_parts takes one b for all parts, not one per sample")
        coefs = [(e, self._coef(b, e.bottom_base), self._coef(t, e.bottom_base)) for e, t in parts]

        def mix(i: int | None) -> list[torch.Tensor]:  # per part: level i's skips or the bottleneck
            out = []
            for e, b_, t_ in coefs:
                if i is None:
                    out.append(self._mix(e.bottom_base, e.bottom_res, b_, t_))
                else:
                    res = None if e.skips_res is None else e.skips_res[i]
                    out.append(self._mix(e.skips_base[i], res, b_, t_))
            return out

        fs = mix(None)  # (M, 8ngf, 1, 1) at full depth
        f = _cat(fs)
        h = self._levels[-1].up_all(f)
        for i in range(len(self._levels) - 1, 0, -1):
            x = torch.cat([_cat(mix(i - 1)), h], 1)
            h = self._levels[i - 1].up_all(x)
        if self.blend:
            images = []
            for (e, _), fp in zip(parts, fs, strict=True):
                if e.image is None:
                    raise ValueError("a --blend generator needs the encoded image in its Encoding")
                images.append(repeat_each(e.image, len(fp) // len(e.image)))
            image = _cat(images)
            x = torch.relu(x)
            if self.warp:
                image = warp_image(image, self.model.up_flow(x))
            m = torch.sigmoid(self.model.up_mask(x))
            h = m * h + (1 - m) * image
        return (h, torch.relu(f)) if return_feature else h

    def forward(
        self, x: torch.Tensor, base_stage: float = 1.0, temporal_stage: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The original's call ``G(x, base, temporal)`` -> (image, latent feature)."""
        enc = self.encode(x, residual=True)
        out, feat = self.decode(enc, base_stage, temporal_stage, return_feature=True)
        return out, feat


# Largest displacement a --warp flow can ask for, as a fraction of the image's half-width
# (0.25: 8 px at 64 px), enough for a mouth corner or a brow, too little to tear the face.
MAX_FLOW = 0.25


def warp_image(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``image`` (M, C, H, W) resampled at each pixel's position plus ``flow`` (M, 2, H, W;
    squashed by tanh to at most ``MAX_FLOW`` of the half-width): the input's own pixels moved,
    which keeps them sharp where a small decoder would redraw them blurred."""
    m, _, h, w = image.shape
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=image.device, dtype=image.dtype)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=image.device, dtype=image.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # (H, W, 2) as (x, y)
    offset = torch.tanh(flow).permute(0, 2, 3, 1) * MAX_FLOW
    return nn.functional.grid_sample(
        image, grid + offset, mode="bilinear", padding_mode="border", align_corners=False
    )


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """The original's init: conv/linear weights N(0, gain) (or xavier/...), biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if init_type == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif init_type == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=gain)
            else:
                raise ValueError(f"unknown --init_type {init_type!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net
