"""Procedural cartoon faces that change expression: the built-in dataset for the demo and tests.

Real expression videos cannot ship with the package, yet training, the demo and the tests all
need clips in the AffineGAN layout with exact mouth masks and known expression intensities.
Every face is drawn from a handful of random identity parameters (skin, face shape, hair, eyes,
brows, background) and one expression intensity ``a`` in [0, 1] that moves the geometry
continuously. Shapes are drawn with PIL at several times the output resolution and box-reduced,
which anti-aliases them and lets the mouth mask be rasterised from the very same geometry.
"""

from __future__ import annotations

import colorsys
import functools
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from affinegan.errors import AffineGANError
from affinegan.files import atomic_output

EXPRESSIONS: tuple[str, ...] = ("smile", "surprise", "anger", "blink")

MIN_SIZE = 32
MAX_SIZE = 1024
README_MARKER = "Synthetic AffineGAN dataset"

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
_SCLERA: Color = (246, 246, 240)
_MOUTH_INSIDE: Color = (72, 20, 26)
_TEETH: Color = (244, 242, 232)
_TONGUE: Color = (206, 94, 104)
_EASINGS: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
    lambda t: t,  # linear
    lambda t: t * t,  # ease-in
    lambda t: 1.0 - (1.0 - t) ** 2,  # ease-out
    lambda t: t * t * (3.0 - 2.0 * t),  # ease-in-out (smoothstep)
    lambda t: t**3 * (t * (6.0 * t - 15.0) + 10.0),  # smootherstep
)


@dataclass(frozen=True)
class _Identity:
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


@dataclass(frozen=True)
class _Pose:
    """Expression-driven geometry changes; the neutral pose is all defaults."""

    brow_raise: float = 0.0
    brow_tilt: float = 0.0
    brow_in: float = 0.0
    brow_arch: float = 0.0
    eye_up: float = 1.0
    eye_lo: float = 1.0
    mouth_w: float = 1.0
    mouth_lift: float = 0.0
    open_u: float = 0.0
    open_l: float = 0.0
    roundness: float = 0.0
    teeth: float = 0.0
    tongue: float = 0.0
    lip: float = 1.0
    cheek_lift: float = 0.0
    crease: float = 0.0


def _pose(expression: str, a: float) -> _Pose:
    """Map an intensity to geometry; every field is continuous in ``a`` and neutral at 0."""
    if expression == "smile":
        opening = a * a
        return _Pose(
            brow_raise=0.008 * a,
            eye_up=1.0 - 0.18 * a,
            eye_lo=1.0 - 0.65 * a,
            mouth_w=1.0 + 0.3 * a,
            mouth_lift=0.05 * a,
            open_u=0.008 * opening,
            open_l=0.045 * opening,
            teeth=0.5,
            lip=1.0 - 0.25 * a,
            cheek_lift=0.025 * a,
            crease=a,
        )
    if expression == "surprise":
        return _Pose(
            brow_raise=0.06 * a,
            brow_arch=0.015 * a,
            eye_up=1.0 + 0.6 * a,
            eye_lo=1.0 + 0.3 * a,
            mouth_w=1.0 - 0.42 * a,
            open_u=0.032 * a,
            open_l=0.052 * a,
            roundness=a,
            tongue=0.3,
        )
    if expression == "anger":
        return _Pose(
            brow_raise=-0.022 * a,
            brow_tilt=0.04 * a,
            brow_in=0.016 * a,
            eye_up=1.0 - 0.45 * a,
            eye_lo=1.0 - 0.3 * a,
            mouth_w=1.0 - 0.12 * a,
            mouth_lift=-0.04 * a,
            lip=1.0 - 0.5 * a,
        )
    return _Pose(eye_up=1.0 - a, eye_lo=1.0 - a)  # blink: only the lids move


def _mix(a: Color, b: Color, t: float) -> Color:
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
    color = _mix(source, (10, 8, 8), darken)
    while _luma(color) > 0.6 * _luma(skin) and darken < 0.95:
        darken += 0.1
        color = _mix(source, (10, 8, 8), darken)
    return color


def _hsv(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


@functools.lru_cache(maxsize=256)
def _identity(identity_seed: int) -> _Identity:
    """Draw one identity; cached because every frame of a clip shares it."""
    rng = np.random.default_rng(identity_seed)
    u = rng.uniform
    pos = u(0.0, 1.0) * (len(_SKIN_RAMP) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(_SKIN_RAMP) - 1)
    base = _SKIN_RAMP[lo] + (_SKIN_RAMP[hi] - _SKIN_RAMP[lo]) * (pos - lo)
    r, g, b = np.clip(base * u(0.96, 1.04) + rng.normal(0.0, 5.0, 3), 0, 255).round()
    skin = (int(r), int(g), int(b))
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
    return _Identity(
        skin=skin,
        shade=_mix(skin, (70, 24, 12), 0.32),
        blush=_mix(skin, (232, 102, 118), u(0.0, 0.35)),
        lips=_mix(skin, (176, 52, 66), u(0.4, 0.65)),
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
def _background(identity_seed: int, side: int) -> Image.Image:
    """The static backdrop at drawing resolution; cached and copied per frame."""
    idn = _identity(identity_seed)
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


class _Canvas:
    """Draws shapes given in canvas fractions onto the frame and, on request, the mouth mask."""

    def __init__(self, img: Image.Image, mask: Image.Image, ss: int, offset: tuple[float, float]):
        self.draw = ImageDraw.Draw(img)
        self.mask = ImageDraw.Draw(mask)
        self.img = img
        self.side = float(img.width)
        self.ss = ss
        self.off = np.array([offset[0] * ss, offset[1] * ss])

    def xy(self, pts: np.ndarray) -> list[float]:
        return (pts * self.side + self.off).ravel().tolist()

    def width(self, w: float) -> int:
        return max(1, round(w * self.side))

    def polygon(self, pts: np.ndarray, color: Color, masked: bool = False) -> None:
        xy = self.xy(pts)
        self.draw.polygon(xy, fill=color)
        if masked:  # fill plus a stroke of one output pixel each side: a slight dilation
            self.mask.polygon(xy, fill=255)
            self._line(self.mask, xy + xy[:2], 255, 2 * self.ss)

    def stroke(self, pts: np.ndarray, color: Color, w: float, masked: bool = False) -> None:
        xy = self.xy(pts)
        px = self.width(w)
        self._line(self.draw, xy, color, px)
        if masked:
            self._line(self.mask, xy, 255, px + 2 * self.ss)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, color: Color) -> None:
        x0, y0, x1, y1 = self.xy(np.array([[cx - rx, cy - ry], [cx + rx, cy + ry]]))
        self.draw.ellipse((x0, y0, x1, y1), fill=color)

    @staticmethod
    def _line(draw: ImageDraw.ImageDraw, xy: list[float], fill: Color | int, px: int) -> None:
        """A polyline with round joints and caps (PIL's own caps are square)."""
        draw.line(xy, fill=fill, width=px, joint="curve")
        r = px / 2.0
        for x, y in ((xy[0], xy[1]), (xy[-2], xy[-1])):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def _band(x: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Closed outline of the region between two curves sampled at the same ``x``."""
    return np.concatenate([np.stack([x, top], 1), np.stack([x, bottom], 1)[::-1]])


def _arc(cx: float, cy: float, rx: float, ry: float, t0: float, t1: float, n: int) -> np.ndarray:
    th = np.linspace(t0, t1, n)
    return np.stack([cx + rx * np.cos(th), cy + ry * np.sin(th)], axis=1)


def _face_outline(idn: _Identity, th: np.ndarray) -> np.ndarray:
    """Face edge at angles ``th`` (y down): an ellipse whose lower half narrows to a chin."""
    sin = np.sin(th)
    taper = 1.0 - idn.jaw * np.clip(sin, 0.0, None) ** 2
    return np.stack([0.5 + idn.face_rx * np.cos(th) * taper, idn.face_cy + idn.face_ry * sin], 1)


def _hair_front(idn: _Identity) -> np.ndarray:
    """Hair over the skull: outer edge past the face, inner edge the hairline or the face edge."""
    side = {"long": 0.9, "curly": 0.45}.get(idn.hair_style, 0.3)
    t = idn.hair_thickness
    th = np.linspace(math.pi - side, 2 * math.pi + side, 96)
    cx, cy = 0.5, idn.face_cy
    radial = 1.0 + (0.06 * np.sin(15 * th) if idn.hair_style == "curly" else 0.0)
    rx, ry = (idn.face_rx + t) * radial, (idn.face_ry + t) * radial
    outer = np.stack([cx + rx * np.cos(th), cy + ry * np.sin(th)], axis=1)
    inner = _face_outline(idn, th[::-1])
    if idn.hair_style == "long":  # strands frame the face
        inner[:, 0] = cx + (inner[:, 0] - cx) * 0.92
    rel = (inner[:, 0] - cx) / idn.face_rx
    line = idn.hairline + 0.05 * rel**2
    if idn.hair_style == "fringe":
        line = line + 0.02 * np.abs(((rel * 3.5) % 1.0) * 2.0 - 1.0)
    inner[:, 1] = np.maximum(inner[:, 1], line)
    return np.concatenate([outer, inner])


def _draw_head(cv: _Canvas, idn: _Identity, pose: _Pose) -> None:
    """Everything but the eyes, brows and mouth."""
    cx, rx = 0.5, idn.face_rx
    cv.ellipse(cx, 1.08, 0.44, 0.22, idn.shirt)
    if idn.hair_style == "long":
        top = _arc(cx, idn.face_cy, rx + 0.05, idn.face_ry + 0.045, math.pi, 2 * math.pi, 32)
        bottom = np.array([[cx + rx + 0.07, 0.93], [cx - rx - 0.07, 0.93]])
        cv.polygon(np.concatenate([top, bottom]), idn.hair)
    elif idn.hair_style == "curly":
        th = np.linspace(0.0, 2 * math.pi, 120, endpoint=False)
        r = 1.0 + 0.05 * np.sin(17 * th)
        pts = [cx + (rx + 0.1) * r * np.cos(th), idn.face_cy - 0.06 + 0.34 * r * np.sin(th)]
        cv.polygon(np.stack(pts, 1), idn.hair)
    neck = 0.45 * rx * np.array([-1.0, 1.0])
    cv.polygon(_band(cx + neck, np.full(2, idn.face_cy), np.full(2, 0.95)), idn.shade)
    ear_y = idn.eye_y + 0.035
    for s in (-1.0, 1.0):
        cv.ellipse(cx + s * rx * 0.97, ear_y, 0.032, 0.052, idn.skin)
        cv.ellipse(cx + s * rx * 0.99, ear_y, 0.014, 0.03, idn.shade)
    outline = _face_outline(idn, np.linspace(0.0, 2 * math.pi, 97))
    cv.polygon(outline, idn.skin)
    cv.stroke(outline, idn.shade, 0.007)
    if idn.hair_style == "bald":
        shine = _mix(idn.skin, (255, 255, 255), 0.25)
        cv.ellipse(cx - 0.3 * rx, idn.face_cy - idn.face_ry + 0.06, 0.05, 0.025, shine)
    else:
        cv.polygon(_hair_front(idn), idn.hair)
    cheek_y = (idn.eye_y + idn.mouth_y) / 2.0 + 0.01 - pose.cheek_lift
    for s in (-1.0, 1.0):
        cv.ellipse(cx + s * (idn.eye_dx + 0.015), cheek_y, 0.042, 0.026, idn.blush)
    tip = idn.eye_y + (idn.mouth_y - idn.eye_y) * 0.6
    u = np.linspace(-1.0, 1.0, 9)
    cv.stroke(np.stack([cx + idn.nose_w * u, tip + 0.012 * (1 - u * u)], 1), idn.shade, 0.007)
    bridge = np.array([[cx + 0.01, idn.eye_y + 0.02], [cx + idn.nose_w * 0.9, tip - 0.006]])
    cv.stroke(bridge, _mix(idn.skin, idn.shade, 0.6), 0.005)


def _draw_eye(cv: _Canvas, idn: _Identity, pose: _Pose, s: float) -> None:
    """Sclera and iris seen through a lens between the lids; closed lids meet on a curve."""
    ex, ey = 0.5 + s * idn.eye_dx, idn.eye_y
    u = np.linspace(-1.0, 1.0, 25)
    x = ex + idn.eye_rx * u
    bend = 1.0 - u * u
    closed = ey + idn.eye_lo * 0.45 * bend
    upper = closed + (ey - idn.eye_up * bend**0.65 - closed) * pose.eye_up
    lower = closed + (ey + idn.eye_lo * bend**0.75 - closed) * pose.eye_lo
    lens = cv.xy(_band(x, upper, lower))
    x0, y0 = math.floor(min(lens[0::2])) - 1, math.floor(min(lens[1::2])) - 1
    x1, y1 = math.ceil(max(lens[0::2])) + 2, math.ceil(max(lens[1::2])) + 2
    if (lower - upper).max() * cv.side >= 0.5:  # closed lids: only the lash line below
        layer = Image.new("RGB", (x1 - x0, y1 - y0), _SCLERA)
        window = Image.new("L", layer.size, 0)
        local = [v - (x0 if i % 2 == 0 else y0) for i, v in enumerate(lens)]
        ImageDraw.Draw(window).polygon(local, fill=255)
        draw = ImageDraw.Draw(layer)
        icx, icy = cv.xy(np.array([ex, ey + 0.1 * idn.eye_up]))
        icx, icy = icx - x0, icy - y0
        for radius, color in (
            (idn.iris_r, _mix(idn.iris, (0, 0, 0), 0.35)),
            (idn.iris_r * 0.85, idn.iris),
            (idn.iris_r * 0.45, (12, 10, 10)),
        ):
            r = radius * cv.side
            draw.ellipse((icx - r, icy - r, icx + r, icy + r), fill=color)
        r = idn.iris_r * 0.22 * cv.side
        hx, hy = icx - idn.iris_r * 0.35 * cv.side, icy - idn.iris_r * 0.35 * cv.side
        draw.ellipse((hx - r, hy - r, hx + r, hy + r), fill=(255, 255, 255))
        cv.img.paste(layer, (x0, y0), window)
    lash = _mix(idn.brow_color, (0, 0, 0), 0.5)
    cv.stroke(np.stack([x, lower], 1), idn.shade, 0.004)
    cv.stroke(np.stack([x, upper], 1), lash, 0.011)
    corner = np.array([x[0], upper[0]] if s < 0 else [x[-1], upper[-1]])
    cv.stroke(np.array([corner, corner + [s * 0.012, -0.008]]), lash, 0.007)


def _draw_brow(cv: _Canvas, idn: _Identity, pose: _Pose, s: float) -> None:
    """A tapered brow; inner end is ``u`` = 0 so anger can pull it down and inward."""
    u = np.linspace(0.0, 1.0, 12)
    bx = 0.5 + s * (idn.eye_dx - pose.brow_in)
    x = bx + s * idn.brow_len * (2.0 * u - 1.0)
    arch = (idn.brow_arch + pose.brow_arch) * np.sin(math.pi * u**0.8)
    y = idn.brow_y - pose.brow_raise - arch + pose.brow_tilt * (1.0 - u) ** 1.5
    half = idn.brow_th * (1.0 - 0.45 * u) / 2.0
    cv.polygon(_band(x, y - half, y + half), idn.brow_color)


def _draw_mouth(cv: _Canvas, idn: _Identity, pose: _Pose) -> None:
    """Lips around an opening; everything drawn here lies inside the masked lip outline."""
    cx, my = 0.5, idn.mouth_y
    w = idn.mouth_w * pose.mouth_w
    lift = idn.mouth_lift + pose.mouth_lift
    lip = idn.lip_th * pose.lip
    power = 1.0 - 0.5 * pose.roundness
    pad = 0.7 * idn.lip_th * pose.roundness

    def mid(x: np.ndarray) -> np.ndarray:
        return my - lift * ((x - cx) / w) ** 2

    def prof(t: np.ndarray, p: float) -> np.ndarray:
        return np.clip(1.0 - t * t, 0.0, 1.0) ** p

    t = np.linspace(-1.0, 1.0, 41)
    xo = cx + (w + pad) * t
    lip_prof = prof(t, 0.6 - 0.4 * pose.roundness)
    open_o = prof((xo - cx) / w, power)
    dip = 0.35 * lip * np.exp(-((t / 0.16) ** 2))
    outer_up = mid(xo) - pose.open_u * open_o - 0.8 * lip * lip_prof + dip
    outer_lo = mid(xo) + pose.open_l * open_o + 1.1 * lip * lip_prof
    cv.polygon(_band(xo, outer_up, outer_lo), idn.lips, masked=True)
    xi = cx + w * t
    slit = np.stack([xi, mid(xi)], 1)
    cv.stroke(slit, _mix(idn.lips, (0, 0, 0), 0.55), 0.006, masked=True)
    if pose.open_u + pose.open_l <= 0.0:
        return
    pi = prof(t, power)
    up = mid(xi) - pose.open_u * pi
    lo = mid(xi) + pose.open_l * pi
    height = (pose.open_u + pose.open_l) * pi
    cv.polygon(_band(xi, up, lo), _MOUTH_INSIDE)
    if pose.teeth > 0.0:
        cv.polygon(_band(xi, up, np.minimum(up + pose.teeth * height, lo)), _TEETH)
    if pose.tongue > 0.0:
        cv.polygon(_band(xi, np.maximum(lo - pose.tongue * height, up), lo), _TONGUE)


def _draw_creases(cv: _Canvas, idn: _Identity, pose: _Pose) -> None:
    """Smile lines beside the mouth corners, fading in with the smile."""
    if pose.crease <= 0.0:
        return
    color = _mix(idn.skin, idn.shade, 0.75 * pose.crease)
    w = idn.mouth_w * pose.mouth_w
    corner_y = idn.mouth_y - idn.mouth_lift - pose.mouth_lift
    for s in (-1.0, 1.0):
        dx = s * np.array([0.008, 0.02, 0.013])
        dy = np.array([-0.035, -0.008, 0.016])
        cv.stroke(np.stack([0.5 + s * w + dx, corner_y + dy], 1), color, 0.006)


def _check_expression(expression: str) -> None:
    if expression not in EXPRESSIONS:
        choices = ", ".join(EXPRESSIONS)
        raise AffineGANError(f"unknown expression {expression!r}; choose one of {choices}")


def _check_size(size: int) -> None:
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise AffineGANError(f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}")


def render_face(
    identity_seed: int,
    expression: str,
    intensity: float,
    size: int = 64,
    offset: tuple[float, float] = (0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """One frame (H,W,3 uint8) and its mouth mask (H,W uint8 0/255) for an identity at an intensity.

    ``offset`` shifts the head (not the background) by that many output pixels, so clips can
    carry the slight head motion of real footage. The mask is rasterised from the same lip
    geometry as the frame and dilated by one pixel, so it always covers the drawn mouth.
    """
    _check_expression(expression)
    _check_size(size)
    if identity_seed < 0:
        raise AffineGANError(f"identity_seed must be >= 0, got {identity_seed}")
    if not 0.0 <= intensity <= 1.0:
        raise AffineGANError(f"intensity must be in [0, 1], got {intensity}")
    ss = 4 if size <= 128 else 2
    side = size * ss
    img = _background(identity_seed, side).copy()
    mask = Image.new("L", (side, side), 0)
    cv = _Canvas(img, mask, ss, offset)
    idn = _identity(identity_seed)
    pose = _pose(expression, float(intensity))
    _draw_head(cv, idn, pose)
    for s in (-1.0, 1.0):
        _draw_eye(cv, idn, pose, s)
        _draw_brow(cv, idn, pose, s)
    _draw_creases(cv, idn, pose)
    _draw_mouth(cv, idn, pose)
    frame = np.asarray(img.reduce(ss))
    mouth = np.where(np.asarray(mask.reduce(ss)) > 0, 255, 0).astype(np.uint8)
    return frame, mouth


@dataclass(frozen=True)
class _ClipPlan:
    identity_seed: int
    intensity: list[float]
    offsets: list[tuple[float, float]]


def _plan_clip(seed: int, split: int, index: int, size: int, lo: int, hi: int) -> _ClipPlan:
    """Per-clip randomness from ``default_rng([seed, split, index])``: order-independent.

    Identity seeds are even for train and odd for test, so held-out identities never repeat
    a training identity.
    """
    rng = np.random.default_rng([seed, split, index])
    identity_seed = 2 * int(rng.integers(0, 2**30)) + split
    n = int(rng.integers(lo, hi + 1))
    ease = _EASINGS[int(rng.integers(len(_EASINGS)))]
    peak = rng.uniform(0.8, 1.0)
    t = np.linspace(0.0, 1.0, n)
    intensity = np.round(peak * ease(t), 6)
    amp = rng.uniform(0.2, 0.5, 2) * size / 64.0
    freq = rng.uniform(0.3, 1.0, 2)
    phase = rng.uniform(0.0, 2 * math.pi, 2)
    wave = np.sin(2 * math.pi * freq * t[:, None] + phase) - np.sin(phase)  # 0 at the neutral frame
    offsets = [(float(dx), float(dy)) for dx, dy in amp * wave]
    return _ClipPlan(identity_seed, [float(v) for v in intensity], offsets)


def _save_png(image: Image.Image, path: Path) -> None:
    """Write then rename, so an interrupted run never leaves a truncated PNG behind (no fsync:
    thousands of frames, remade from the seed, would wait seconds for the disk)."""
    with atomic_output(path, fsync=False) as tmp:
        image.save(tmp, format="PNG")


def _write_text(path: Path, text: str) -> None:
    with atomic_output(path, fsync=False) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _prepare(out: Path, readme: str) -> None:
    """Clear a previous synthetic render (stale frames would corrupt clips); never foreign data."""
    if out.exists() and not out.is_dir():
        raise AffineGANError(f"{out} is a file; give a folder for the synthetic dataset")
    marker = out / "README.txt"
    ours = marker.is_file() and marker.read_text(encoding="utf-8").startswith(README_MARKER)
    for split in ("train", "test"):
        folder = out / split
        if folder.is_dir() and any(folder.iterdir()):
            if not ours:
                raise AffineGANError(
                    f"{folder} holds data that is not a synthetic dataset; choose an empty folder"
                )
            shutil.rmtree(folder)
    out.mkdir(parents=True, exist_ok=True)
    _write_text(marker, readme)


def _write_clip(
    root: Path, name: str, expression: str, size: int, plan: _ClipPlan, masks: bool
) -> None:
    img_dir = root / "img" / name
    img_dir.mkdir(parents=True, exist_ok=True)
    patch_dir = root / "patch" / name
    if masks:
        patch_dir.mkdir(parents=True, exist_ok=True)
    frames = [f"{k + 1:04d}.png" for k in range(len(plan.intensity))]
    for frame_name, a, offset in zip(frames, plan.intensity, plan.offsets, strict=True):
        frame, mouth = render_face(plan.identity_seed, expression, a, size, offset)
        _save_png(Image.fromarray(frame), img_dir / frame_name)
        if masks:
            _save_png(Image.fromarray(mouth), patch_dir / frame_name)
    meta = {
        "expression": expression,
        "frames": frames,
        "intensity": plan.intensity,
        "identity_seed": plan.identity_seed,
    }
    (root / "meta").mkdir(parents=True, exist_ok=True)
    _write_text(root / "meta" / f"{name}.json", json.dumps(meta, indent=1) + "\n")


def render_dataset(
    out: Path,
    expression: str = "smile",
    clips: int = 12,
    test_clips: int = 2,
    size: int = 64,
    seed: int = 0,
    min_frames: int = 8,
    max_frames: int = 30,
) -> Path:
    """Write a dataset in the AffineGAN clip layout under `out`; returns `out`.

    ``train/img/clip_NNNN`` frames go from neutral (intensity 0, frame 0001) to a peak in
    [0.8, 1] with a per-clip easing, with exact mouth masks in ``train/patch``; ``test/img``
    holds full videos of held-out identities for evaluation. ``<split>/meta/<clip>.json``
    records the intensity of each frame. The same arguments always give byte-identical files.
    """
    _check_expression(expression)
    _check_size(size)
    if clips < 1:
        raise AffineGANError(f"clips must be >= 1, got {clips}")
    if test_clips < 0:
        raise AffineGANError(f"test_clips must be >= 0, got {test_clips}")
    if seed < 0:
        raise AffineGANError(f"seed must be >= 0, got {seed}")
    if min_frames < 2:
        raise AffineGANError(f"min_frames must be >= 2 (neutral plus one), got {min_frames}")
    if max_frames < min_frames:
        raise AffineGANError(f"max_frames ({max_frames}) must be >= min_frames ({min_frames})")
    out = Path(out)
    readme = (
        f"{README_MARKER} from affinegan.data.synthetic.render_dataset: expression={expression} "
        f"seed={seed} size={size} clips={clips} test_clips={test_clips} "
        f"frames={min_frames}-{max_frames}\n"
    )
    _prepare(out, readme)
    for split, prefix, count in ((0, "clip", clips), (1, "test", test_clips)):
        root = out / ("train", "test")[split]
        for index in range(count):
            plan = _plan_clip(seed, split, index, size, min_frames, max_frames)
            _write_clip(root, f"{prefix}_{index:04d}", expression, size, plan, masks=split == 0)
    return out
