"""Who a cartoon face is: skin, hair, face shape, eyes, brows, mouth and backdrop, drawn once
per identity seed from a few random parameters (fractions of the canvas side)."""

from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

Color = tuple[int, int, int]

_HAIR_STYLES = ("bald", "cap", "fringe", "long", "curly")
_SKIN_RAMP = np.array(
    [
        (255, 228, 208),
        (242, 196, 162),
        (226, 172, 128),
        (198, 136, 96),
        (162, 104, 70),
        (122, 78, 50),
        (86, 56, 40),
    ],
    dtype=np.float64,
)
_HAIR_COLORS: tuple[Color, ...] = (
    (24, 20, 20),
    (58, 38, 26),
    (104, 68, 40),
    (142, 62, 30),
    (214, 178, 104),
    (236, 214, 158),
    (150, 150, 152),
    (226, 224, 220),
    (54, 84, 186),
    (196, 66, 140),
)
_HAIR_WEIGHTS = np.array([6, 6, 5, 3, 3, 2, 2, 1, 1, 1], dtype=np.float64)
_IRIS_COLORS: tuple[Color, ...] = (
    (62, 40, 24),
    (112, 72, 36),
    (136, 104, 48),
    (64, 124, 76),
    (62, 110, 184),
    (112, 128, 140),
)


@dataclass(frozen=True)
class Identity:
    """Everything that makes one person look like themselves; fractions of the canvas side."""

    skin: Color
    shade: Color
    blush: Color
    lips: Color
    hair: Color
    hair_style: str
    brow_color: Color
    iris: Color
    shirt: Color
    bg: tuple[Color, Color]
    bg_mode: str
    face_cy: float
    face_rx: float
    face_ry: float
    jaw: float
    hair_thickness: float
    hairline: float
    eye_dx: float
    eye_y: float
    eye_rx: float
    eye_up: float
    eye_lo: float
    iris_r: float
    brow_y: float
    brow_len: float
    brow_th: float
    brow_arch: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_th: float
    mouth_lift: float


def mix_color(a: Color, b: Color, t: float) -> Color:
    """Blend two colours; ``t`` = 0 gives ``a``."""
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _luma(c: Color) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _brow_color(source: Color, skin: Color, darken: float) -> Color:
    """Hair-coloured brows, darkened until they stand out on the skin (or brows vanish)."""
    color = mix_color(source, (10, 8, 8), darken)
    while _luma(color) > 0.6 * _luma(skin) and darken < 0.95:
        darken += 0.1
        color = mix_color(source, (10, 8, 8), darken)
    return color


def _hsv(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def _draw_skin(rng: np.random.Generator) -> Color:
    """A skin tone interpolated along the ramp, then jittered: kept apart from ``identity`` as
    the one draw that reads a table. It draws, in this order, the ramp position, the brightness
    and the per-channel noise; that order (and its place first in ``identity``) fixes every
    synthetic render, so keep it."""
    pos = rng.uniform(0.0, 1.0) * (len(_SKIN_RAMP) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(_SKIN_RAMP) - 1)
    base = _SKIN_RAMP[lo] + (_SKIN_RAMP[hi] - _SKIN_RAMP[lo]) * (pos - lo)
    r, g, b = np.clip(base * rng.uniform(0.96, 1.04) + rng.normal(0.0, 5.0, 3), 0, 255).round()
    return (int(r), int(g), int(b))


@functools.lru_cache(maxsize=256)
def identity(identity_seed: int) -> Identity:
    """Draw one identity; cached because every frame of a clip shares it."""
    rng = np.random.default_rng(identity_seed)
    u = rng.uniform
    skin = _draw_skin(rng)
    hair = _HAIR_COLORS[rng.choice(len(_HAIR_COLORS), p=_HAIR_WEIGHTS / _HAIR_WEIGHTS.sum())]
    style = _HAIR_STYLES[int(rng.integers(len(_HAIR_STYLES)))]
    brow_src = _HAIR_COLORS[int(rng.integers(4))] if style == "bald" else hair
    bg_h = u(0.0, 1.0)
    bg_top = _hsv(bg_h, u(0.08, 0.45), u(0.62, 0.96))
    bg_bottom = _hsv(bg_h + u(-0.12, 0.12), u(0.1, 0.5), u(0.45, 0.85))

    face_cy = u(0.49, 0.53)
    face_rx = u(0.24, 0.30)
    face_ry = u(0.31, 0.36)
    eye_y = face_cy - face_ry * u(0.12, 0.2)
    eye_up = u(0.03, 0.04)
    brow_y = eye_y - eye_up - u(0.03, 0.042)
    face_top = face_cy - face_ry
    jag = 0.02 if style == "fringe" else 0.0
    hairline = {
        "fringe": min(face_top + 0.11, brow_y - 0.075 - jag),
        "long": face_top + u(0.05, 0.08),
        "curly": face_top + u(0.05, 0.07),
    }.get(style, face_top + u(0.06, 0.09))
    return Identity(
        skin=skin,
        shade=mix_color(skin, (70, 24, 12), 0.32),
        blush=mix_color(skin, (232, 102, 118), u(0.0, 0.35)),
        lips=mix_color(skin, (176, 52, 66), u(0.4, 0.65)),
        hair=hair,
        hair_style=style,
        brow_color=_brow_color(brow_src, skin, u(0.15, 0.45)),
        iris=_IRIS_COLORS[int(rng.integers(len(_IRIS_COLORS)))],
        shirt=_hsv(u(0.0, 1.0), u(0.3, 0.8), u(0.3, 0.9)),
        bg=(bg_top, bg_bottom),
        bg_mode=("plain", "vertical", "diagonal", "split")[int(rng.integers(4))],
        face_cy=face_cy,
        face_rx=face_rx,
        face_ry=face_ry,
        jaw=u(0.04, 0.3),
        hair_thickness=u(0.03, 0.06) if style == "curly" else u(0.015, 0.035),
        hairline=hairline,
        eye_dx=face_rx * u(0.36, 0.45),
        eye_y=eye_y,
        eye_rx=u(0.047, 0.06),
        eye_up=eye_up,
        eye_lo=u(0.018, 0.026),
        iris_r=u(0.026, 0.033),
        brow_y=brow_y,
        brow_len=u(0.038, 0.052),
        brow_th=u(0.011, 0.022),
        brow_arch=u(0.0, 0.014),
        nose_w=u(0.012, 0.022),
        mouth_y=face_cy + face_ry * u(0.45, 0.53),
        mouth_w=u(0.065, 0.088),
        lip_th=u(0.012, 0.019),
        mouth_lift=u(-0.003, 0.006),
    )


@functools.lru_cache(maxsize=8)
def background(identity_seed: int, side: int) -> Image.Image:
    """The static backdrop at drawing resolution; cached and copied per frame."""
    idn = identity(identity_seed)
    ramp = np.linspace(0.0, 1.0, side)
    yy, xx = ramp[:, None], ramp[None, :]
    if idn.bg_mode == "plain":
        t = np.zeros((side, side))
    elif idn.bg_mode == "vertical":
        t = np.broadcast_to(yy, (side, side))
    elif idn.bg_mode == "diagonal":
        t = (xx + yy) / 2.0
    else:
        t = np.broadcast_to((yy > 0.62).astype(np.float64), (side, side))
    top = np.array(idn.bg[0], dtype=np.float64)
    bottom = np.array(idn.bg[1], dtype=np.float64)
    rgb = top + (bottom - top) * t[..., None]
    return Image.fromarray(np.round(rgb).astype(np.uint8))
