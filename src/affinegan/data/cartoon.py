"""Procedural cartoon faces that change expression, drawn one frame at a time.

Real expression videos cannot ship with the package, yet training, the demo and the tests all
need clips in the AffineGAN layout with exact mouth masks and known expression intensities.
Every face is drawn from a handful of random identity parameters (skin, face shape, hair, eyes,
brows, background) and one expression intensity ``a`` in [0, 1] that moves the geometry
continuously. Shapes are drawn with PIL at several times the output resolution and box-reduced,
which anti-aliases them and lets the mouth mask be rasterised from the very same geometry.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from affinegan.data.cartoon_identity import Color, Identity, background, identity, mix_color
from affinegan.data.cartoon_pose import EXPRESSIONS, Pose, check_expression, mixed_pose
from affinegan.errors import AffineGANError

__all__ = ["EXPRESSIONS", "render_face", "render_mix"]

MIN_SIZE = 32
MAX_ZOOM = 3.0
# Height of a close-up's centre in the full frame, as a fraction of its side: just under the eyes,
# so that a zoom keeps brows, eyes and mouth and crops the hair and shoulders.
ZOOM_CENTRE_Y = 0.47
MAX_SIZE = 1024

_SCLERA: Color = (246, 246, 240)
_MOUTH_INSIDE: Color = (72, 20, 26)
_TEETH: Color = (244, 242, 232)
_TONGUE: Color = (206, 94, 104)


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


def _face_outline(idn: Identity, th: np.ndarray) -> np.ndarray:
    """Face edge at angles ``th`` (y down): an ellipse whose lower half narrows to a chin."""
    sin = np.sin(th)
    taper = 1.0 - idn.jaw * np.clip(sin, 0.0, None) ** 2
    return np.stack([0.5 + idn.face_rx * np.cos(th) * taper, idn.face_cy + idn.face_ry * sin], 1)


def _hair_front(idn: Identity) -> np.ndarray:
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


def _draw_head(cv: _Canvas, idn: Identity, pose: Pose) -> None:
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
        shine = mix_color(idn.skin, (255, 255, 255), 0.25)
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
    cv.stroke(bridge, mix_color(idn.skin, idn.shade, 0.6), 0.005)


def _draw_eye(cv: _Canvas, idn: Identity, pose: Pose, s: float) -> None:
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
            (idn.iris_r, mix_color(idn.iris, (0, 0, 0), 0.35)),
            (idn.iris_r * 0.85, idn.iris),
            (idn.iris_r * 0.45, (12, 10, 10)),
        ):
            r = radius * cv.side
            draw.ellipse((icx - r, icy - r, icx + r, icy + r), fill=color)
        r = idn.iris_r * 0.22 * cv.side
        hx, hy = icx - idn.iris_r * 0.35 * cv.side, icy - idn.iris_r * 0.35 * cv.side
        draw.ellipse((hx - r, hy - r, hx + r, hy + r), fill=(255, 255, 255))
        cv.img.paste(layer, (x0, y0), window)
    lash = mix_color(idn.brow_color, (0, 0, 0), 0.5)
    cv.stroke(np.stack([x, lower], 1), idn.shade, 0.004)
    cv.stroke(np.stack([x, upper], 1), lash, 0.011)
    corner = np.array([x[0], upper[0]] if s < 0 else [x[-1], upper[-1]])
    cv.stroke(np.array([corner, corner + [s * 0.012, -0.008]]), lash, 0.007)


def _draw_brow(cv: _Canvas, idn: Identity, pose: Pose, s: float) -> None:
    """A tapered brow; inner end is ``u`` = 0 so anger can pull it down and inward."""
    u = np.linspace(0.0, 1.0, 12)
    bx = 0.5 + s * (idn.eye_dx - pose.brow_in)
    x = bx + s * idn.brow_len * (2.0 * u - 1.0)
    arch = (idn.brow_arch + pose.brow_arch) * np.sin(math.pi * u**0.8)
    y = idn.brow_y - pose.brow_raise - arch + pose.brow_tilt * (1.0 - u) ** 1.5
    half = idn.brow_th * (1.0 - 0.45 * u) / 2.0
    cv.polygon(_band(x, y - half, y + half), idn.brow_color)


def _draw_mouth(cv: _Canvas, idn: Identity, pose: Pose) -> None:
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
    cv.stroke(slit, mix_color(idn.lips, (0, 0, 0), 0.55), 0.006, masked=True)
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


def _draw_creases(cv: _Canvas, idn: Identity, pose: Pose) -> None:
    """Smile lines beside the mouth corners, fading in with the smile."""
    if pose.crease <= 0.0:
        return
    color = mix_color(idn.skin, idn.shade, 0.75 * pose.crease)
    w = idn.mouth_w * pose.mouth_w
    corner_y = idn.mouth_y - idn.mouth_lift - pose.mouth_lift
    for s in (-1.0, 1.0):
        dx = s * np.array([0.008, 0.02, 0.013])
        dy = np.array([-0.035, -0.008, 0.016])
        cv.stroke(np.stack([0.5 + s * w + dx, corner_y + dy], 1), color, 0.006)


def check_size(size: int) -> None:
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise AffineGANError(f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}")


def render_face(
    identity_seed: int,
    expression: str,
    intensity: float,
    size: int = 64,
    offset: tuple[float, float] = (0.0, 0.0),
    zoom: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One frame (H,W,3 uint8) and its mouth mask (H,W uint8 0/255) for an identity at an intensity.

    ``offset`` shifts the head (not the background) by that many pixels of the unzoomed frame, so
    clips can carry the slight head motion of real footage. The mask is rasterised from the same
    lip geometry as the frame and dilated by one pixel, so it always covers the drawn mouth.
    ``zoom`` > 1 frames a close-up: the frame drawn ``zoom`` times larger, its centre cropped.
    """
    return render_mix(identity_seed, {expression: intensity}, size, offset, zoom)


def render_mix(
    identity_seed: int,
    intensities: dict[str, float],
    size: int = 64,
    offset: tuple[float, float] = (0.0, 0.0),
    zoom: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``render_face`` with several expressions at once, each at its own intensity."""
    for name, a in intensities.items():
        check_expression(name)
        if not 0.0 <= a <= 1.0:
            raise AffineGANError(f"intensity must be in [0, 1], got {a}")
    check_size(size)
    check_zoom(zoom)
    if identity_seed < 0:
        raise AffineGANError(f"identity_seed must be >= 0, got {identity_seed}")
    if zoom == 1.0:
        return _render(identity_seed, intensities, size, offset)
    full = round(size * zoom)
    scale = full / size
    frame, mouth = _render(identity_seed, intensities, full, (offset[0] * scale, offset[1] * scale))
    x0 = (full - size) // 2
    y0 = min(max(0, round(ZOOM_CENTRE_Y * full - size / 2)), full - size)
    return frame[y0 : y0 + size, x0 : x0 + size], mouth[y0 : y0 + size, x0 : x0 + size]


def check_zoom(zoom: float) -> None:
    if not 1.0 <= zoom <= MAX_ZOOM:
        raise AffineGANError(f"zoom must be between 1 and {MAX_ZOOM:g}, got {zoom:g}")


def _render(
    identity_seed: int, intensities: dict[str, float], size: int, offset: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The whole frame at ``size``: shapes drawn at 2-4x and box-reduced."""
    ss = 4 if size <= 128 else 2
    side = size * ss
    img = background(identity_seed, side).copy()
    mask = Image.new("L", (side, side), 0)
    cv = _Canvas(img, mask, ss, offset)
    idn = identity(identity_seed)
    pose = mixed_pose(intensities)
    _draw_head(cv, idn, pose)
    for s in (-1.0, 1.0):
        _draw_eye(cv, idn, pose, s)
        _draw_brow(cv, idn, pose, s)
    _draw_creases(cv, idn, pose)
    _draw_mouth(cv, idn, pose)
    frame = np.asarray(img.reduce(ss))
    mouth = np.where(np.asarray(mask.reduce(ss)) > 0, 255, 0).astype(np.uint8)
    return frame, mouth
