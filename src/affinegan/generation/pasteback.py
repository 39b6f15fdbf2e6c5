"""Animate a face inside the user's full-resolution photo (paste-back).

The generator sees a small square crop of the face (128 px for the shipped smile model).
Showing that crop, or pasting the whole generated crop back, would put a blurred face into a
sharp photo. Instead each frame adds to the photo only what the model *changed*: the
difference between the generated frame and the generated alpha-0 frame (cleaned of the
decoder's checkerboard and drift), upsampled to the crop's size in the photo, inside the face
(the landmarks' outline from jaw to brows, feathered towards its edge). So at alpha 0 the
frame is the photo itself, outside the face nothing ever moves, and the face keeps the
photo's own detail wherever the expression leaves it alone; there is no seam to colour-match,
since the change fades to zero at the outline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter

from affinegan.data.align import MARGIN, CropBox, crop, face_crop_box, pick_face
from affinegan.generation.expressions import Plan

FEATHER = 1 / 24  # blur radius of the face outline, as a fraction of the crop side
INSET = 0.08  # the outline is drawn this share of the way towards its centre
UNSEEN = 0.5  # a change under half a level rounds away: the window skips it
CHANGE_BLUR = 1.0  # model pixels: the decoder's checkerboard, not a mouth's shape
CHANGE_FLOOR = (3.0, 8.0)  # levels: drift under the first is dropped, change over the second kept
_OUTLINE = list(range(0, 17)) + list(range(26, 16, -1))  # jaw, then the brows back


@dataclass
class Placement:
    """Where the model's crop of the face sits in the photo, and which of its pixels may
    change (``weight``, model-size (S, S) in [0, 1])."""

    photo: np.ndarray  # (H, W, 3) uint8, the user's photo
    box: CropBox
    crop: np.ndarray  # (S, S, 3) uint8, what the generator sees
    weight: np.ndarray  # (S, S) float32


def face_weight(points: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """The face's outline (jaw and brows, drawn ``INSET`` towards its centre) in the crop,
    filled and feathered: 1 inside, falling to 0 across ``FEATHER`` of the side, and 0 on the
    crop's border. The inset keeps out the jaw line and the hair and neck behind it, where a
    generator trained on two photos of a person learns fringes rather than expression."""
    outline = box.to_crop(np.asarray(points)[_OUTLINE], size)
    centre = outline.mean(axis=0)
    outline = centre + (1 - INSET) * (outline - centre)
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in outline], fill=255)
    radius = max(1.0, FEATHER * size)
    soft = np.asarray(canvas.filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255
    edge = max(1, round(radius))
    soft[:edge], soft[-edge:], soft[:, :edge], soft[:, -edge:] = 0, 0, 0, 0
    return soft


def place(
    photo: np.ndarray,
    size: int,
    name: str = "the photo",
    face_index: int | None = None,
    margin: float = MARGIN,
) -> Placement:
    """Find the face (``face_index`` among several, left to right) and frame it like
    ``affinegan prepare`` frames training clips."""
    face = pick_face(photo, name, face_index)
    box = face_crop_box([face.box], margin)
    return Placement(photo, box, crop(photo, box, size), face_weight(face.points, box, size))


def expression_change(frame: np.ndarray, still: np.ndarray) -> np.ndarray:
    """``frame - still`` (S, S, 3) as float32, cleaned of what is not the expression.

    A small generator's decoder leaves a faint 2-pixel checkerboard and a few levels of drift
    over the whole face, which upsampled onto a sharp photo reads as blotches: a Gaussian of
    ``CHANGE_BLUR`` model pixels removes the checkerboard (a mouth's change is several pixels
    wide), and changes under ``CHANGE_FLOOR[0]`` levels are dropped, rising smoothly to kept
    whole at ``CHANGE_FLOOR[1]``.
    """
    d = torch.from_numpy(frame.astype(np.float32) - still.astype(np.float32)).permute(2, 0, 1)
    x = torch.arange(-2, 3, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * CHANGE_BLUR**2))
    kernel = (kernel / kernel.sum())[None, None]
    d = F.pad(d[:, None], (2, 2, 2, 2), mode="replicate")  # (3, 1, S+4, S+4)
    d = F.conv2d(F.conv2d(d, kernel[..., None, :]), kernel[..., :, None])[:, 0]
    lo, hi = CHANGE_FLOOR
    t = ((d.abs().amax(0) - lo) / (hi - lo)).clamp(0, 1)
    return (d * (t * t * (3 - 2 * t))).permute(1, 2, 0).numpy()


def paste(placement: Placement, frame: np.ndarray, still: np.ndarray) -> np.ndarray:
    """The photo with the expression's change (``expression_change`` of the generated frame
    and the alpha-0 frame ``still``, model-size) added inside the face, at the photo's
    resolution.

    Only the window where the weighted change reaches ``UNSEEN`` levels (plus the bicubic
    kernel's reach) is upsampled and added, in float32 with torch, so a 12-megapixel frame
    takes a fraction of a second; the window's corner snaps to a whole photo pixel.
    """
    p, box = placement, placement.box
    out = p.photo.copy()
    change = expression_change(frame, still) * p.weight[..., None]
    rows, cols = np.nonzero(np.abs(change).max(axis=2) >= UNSEEN)
    if rows.size == 0:
        return out
    s = p.weight.shape[0]
    scale = box.side / s
    r0, c0 = max(int(rows.min()) - 2, 0), max(int(cols.min()) - 2, 0)
    r1, c1 = min(int(rows.max()) + 3, s), min(int(cols.max()) + 3, s)
    window = np.ascontiguousarray(change[r0:r1, c0:c1])
    t = torch.from_numpy(window).permute(2, 0, 1)[None]
    big = F.interpolate(t, scale_factor=scale, mode="bicubic", recompute_scale_factor=False)[0]
    top, left = box.top + round(r0 * scale), box.left + round(c0 * scale)
    h, w = p.photo.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + big.shape[1], h), min(left + big.shape[2], w)
    if y1 <= y0 or x1 <= x0:
        return out
    region = big[:, y0 - top : y1 - top, x0 - left : x1 - left]
    photo = torch.from_numpy(out[y0:y1, x0:x1]).permute(2, 0, 1).float()
    pasted = (photo + region).round_().clamp_(0, 255).to(torch.uint8)
    out[y0:y1, x0:x1] = pasted.permute(1, 2, 0).numpy()
    return out


def with_still(video: Plan) -> Plan:
    """``video`` plus a last all-zero row: the alpha-0 frame every change is measured from,
    decoded in the same batch as the others."""
    zero = np.zeros((1, video.weights.shape[1]), np.float32)
    return Plan(video.expressions, np.concatenate([video.weights, zero]))
