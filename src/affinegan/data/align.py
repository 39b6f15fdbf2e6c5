"""Face-centred square crops and mouth masks from dlib's 68 landmarks.

The original asks users to crop every clip by hand with the head centred and fixed. Here one
square per clip comes from the detected faces: its side is ``margin`` times the face size and its
centre sits just below the eyes, so forehead and chin fit. The square stays fixed for the whole
clip, because a crop that followed the head would turn camera jitter into facial motion the
affine model would have to explain. Where it leaves the frame the border pixels are repeated
instead of shifting the face off centre, so clips and single photos (``crop_to_face``, used by
``generate --align`` and the web demo) are framed alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from affinegan.cli.command_options import CROP_MARGIN
from affinegan.data.trim import RIGID, similarity
from affinegan.errors import AffineGANError
from affinegan.evaluation.face import Box, detect_faces, landmarks

MARGIN = CROP_MARGIN  # crop side / face-box side (declared with the --margin flag)
CENTER_Y = 0.45  # crop centre, as a fraction of the face box below its top: just under the eyes
DETECT_SIDE = 640  # frames are scaled to this longer side for detection (speed, tiny faces)
OUTER_LIP = slice(48, 60)
MASK_DILATION = 1 / 256  # the mask grows by this fraction of the output side (at least 1 px)
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class CropBox:
    """A square in source pixels; it may reach past the image edges (negative left/top)."""

    left: int
    top: int
    side: int

    def to_crop(self, points: np.ndarray, size: int) -> np.ndarray:
        """Map source ``(x, y)`` points into the pixels of the ``size x size`` crop."""
        return (np.asarray(points, np.float64) - (self.left, self.top)) * (size / self.side)

    def outside(self, width: int, height: int) -> float:
        """Fraction of the square lying outside a ``width x height`` image (filled by padding)."""
        w = max(0, min(self.left + self.side, width) - max(self.left, 0))
        h = max(0, min(self.top + self.side, height) - max(self.top, 0))
        return 1.0 - w * h / self.side**2


@dataclass(frozen=True)
class Face:
    """One frame's face in source pixels; ``detected`` is False when the points were located
    from a neighbouring frame's box because the detector missed this frame."""

    box: Box
    points: np.ndarray  # (68, 2) float
    detected: bool


def _centre(box: Box) -> tuple[float, float]:
    return (box.left + box.right) / 2, (box.top + box.bottom) / 2


def _scale_box(box: Box, s: float) -> Box:
    return Box(round(box.left * s), round(box.top * s), round(box.right * s), round(box.bottom * s))


def _resized(box: Box, side: float) -> Box:
    """``box`` with its centre kept and its side set to ``side``."""
    cx, cy = _centre(box)
    half = side / 2
    return Box(round(cx - half), round(cy - half), round(cx + half), round(cy + half))


def locate_face(
    image: np.ndarray, near: Box | None = None, side: float | None = None
) -> Face | None:
    """The face nearest ``near`` (else the largest) with its landmarks, or None without one.

    The frame is scaled so its longer side is ``DETECT_SIDE``: large frames detect faster and
    small ones (dlib misses faces under ~80 px) are found at all. When nothing is detected but
    ``near`` is given, the landmarks are still located inside ``near`` (``detected=False``).
    ``side`` fixes the size of the box the landmark predictor starts from: dlib's boxes jump
    between pyramid scales from frame to frame, and the predicted mouth and jaw move with them.
    """
    h, w = image.shape[:2]
    s = DETECT_SIDE / max(h, w)
    work = np.asarray(Image.fromarray(image).resize((round(w * s), round(h * s)), Image.BILINEAR))
    boxes = detect_faces(work, upsample=0) or detect_faces(work, upsample=1)
    if boxes:
        if near is not None:
            nx, ny = _centre(_scale_box(near, s))
            boxes.sort(key=lambda b: (_centre(b)[0] - nx) ** 2 + (_centre(b)[1] - ny) ** 2)
        box, detected = boxes[0], True
    elif near is not None:
        box, detected = _scale_box(near, s), False
    else:
        return None
    fit = box if side is None else _resized(box, side * s)
    points = landmarks(work, fit).astype(np.float64) / s
    return Face(_scale_box(box, 1 / s), points, detected)


def face_crop_box(faces: Sequence[Box], margin: float = MARGIN) -> CropBox:
    """One square for all ``faces``: the median centre and size, robust to stray detections."""
    if not faces:
        raise ValueError("face_crop_box needs at least one face box")
    if margin <= 0:
        raise AffineGANError(f"margin must be positive, got {margin}")
    side = float(np.median([margin * (f.width + f.height) / 2 for f in faces]))
    cx = float(np.median([(f.left + f.right) / 2 for f in faces]))
    cy = float(np.median([f.top + CENTER_Y * f.height for f in faces]))
    side_px = max(1, round(side))
    return CropBox(round(cx - side_px / 2), round(cy - side_px / 2), side_px)


def crop(image: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """The square's pixels resized to ``size x size`` (HW or HWC uint8); parts outside the
    image repeat the nearest border pixel."""
    h, w = image.shape[:2]
    x0, y0 = box.left, box.top
    x1, y1 = x0 + box.side, y0 + box.side
    inside = image[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
    if inside.size == 0:
        raise ValueError(f"crop box {box} does not overlap the {w}x{h} image")
    pad = [(max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w))]
    square = np.pad(inside, pad + [(0, 0)] * (image.ndim - 2), mode="edge")
    return np.asarray(Image.fromarray(square).resize((size, size), Image.LANCZOS))


@dataclass(frozen=True)
class Stabiliser:
    """The similarity that puts one frame's head where the clip's first frame has it.

    Two photos of a person, or the frames of a hand-held video, are never taken from the same
    spot; a generator trained on them must learn to move the head as well as the expression,
    and blurs the face doing so. Aligning every frame's rigid landmarks (eye corners, nose) to
    the first frame's leaves only the expression to learn.
    """

    scale: float
    rot: np.ndarray  # (2, 2): a point ``p`` maps to ``scale * p @ rot + shift``
    shift: np.ndarray  # (2,)

    @classmethod
    def between(cls, points: np.ndarray, reference: np.ndarray) -> Stabiliser:
        """The transform taking ``points`` (68, 2) onto ``reference`` by their rigid points."""
        scale, rot, shift = similarity(np.asarray(points)[RIGID], np.asarray(reference)[RIGID])
        return cls(scale, rot, shift)

    def points(self, points: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(points, np.float64) @ self.rot + self.shift

    def window(self, image: np.ndarray, left: int, top: int, width: int, height: int) -> np.ndarray:
        """The ``width x height`` window at ``(left, top)`` of ``image`` (HWC uint8) moved onto
        the reference frame. Only the window is resampled (a face's square, not a 4K frame);
        what the move uncovers, or the window reaches past, repeats the nearest border pixel,
        as ``crop`` pads, so no black fringe is learned as part of the expression."""
        h, w = image.shape[:2]
        # PIL maps each output pixel o to the input p = (o + (left, top) - shift) @ m (the
        # inverse of the move, rot orthogonal), here in a frame padded to reach every p.
        m = self.rot.T / self.scale
        corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64)
        src = (corners + (left, top) - self.shift) @ m
        pad = 3 + int(np.ceil(max(0.0, -src.min(), (src[:, 0] - w).max(), (src[:, 1] - h).max())))
        padded = np.pad(image, [(pad, pad), (pad, pad)] + [(0, 0)] * (image.ndim - 2), "edge")
        c, f = (np.array([left, top], np.float64) - self.shift) @ m + pad
        a, b, d, e = m[0, 0], m[1, 0], m[0, 1], m[1, 1]
        moved = Image.fromarray(padded).transform(
            (width, height), Image.AFFINE, (a, b, c, d, e, f), Image.BICUBIC
        )
        return np.asarray(moved)

    def image(self, image: np.ndarray) -> np.ndarray:
        """The whole ``image`` moved onto the reference frame, same size."""
        return self.window(image, 0, 0, image.shape[1], image.shape[0])

    def crop(self, image: np.ndarray, box: CropBox, size: int) -> np.ndarray:
        """``crop(self.image(image), box, size)``, resampling only the box's square."""
        square = self.window(image, box.left, box.top, box.side, box.side)
        return crop(square, CropBox(0, 0, box.side), size)


def mouth_mask(points: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Binary ``(size, size)`` uint8 mask (0/255) of the outer-lip polygon in the crop.

    Rasterised at 4x and reduced, so small crops get the right area, then dilated by
    ``MASK_DILATION`` so the lip edge, where landmarks are least precise, stays inside.
    """
    big = size * _SUPERSAMPLE
    poly = box.to_crop(np.asarray(points)[OUTER_LIP], big)
    canvas = Image.new("L", (big, big), 0)
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in poly], fill=255)
    mask = canvas.reduce(_SUPERSAMPLE).point(lambda v: 255 if v >= 128 else 0)
    radius = max(1, round(MASK_DILATION * size))
    return np.asarray(mask.filter(ImageFilter.MaxFilter(2 * radius + 1)))


def pick_face(rgb: np.ndarray, name: str, index: int | None = None) -> Face:
    """The face to animate in a photo, with its landmarks: the only one, or with ``index``
    the index-th from the left. No face, several without an index, or an index out of range
    is a one-line error naming the photo."""
    h, w = rgb.shape[:2]
    s = DETECT_SIDE / max(h, w)
    work = np.asarray(Image.fromarray(rgb).resize((round(w * s), round(h * s)), Image.BILINEAR))
    boxes = detect_faces(work, upsample=0) or detect_faces(work, upsample=1)
    if not boxes:
        raise AffineGANError(
            f"no face found in {name}; use a photo of one frontal, well-lit, unobstructed face"
        )
    boxes.sort(key=lambda b: b.left)
    if index is None and len(boxes) > 1:
        raise AffineGANError(
            f"{name}: {len(boxes)} faces found; pick one with --face_index 0..{len(boxes) - 1} "
            "(left to right)"
        )
    if index is not None and not 0 <= index < len(boxes):
        raise AffineGANError(
            f"--face_index {index}: {name} has {len(boxes)} face(s), numbered from 0, left to right"
        )
    box = boxes[index or 0]  # found and fitted on the frame `locate_face` (prepare) works on
    return Face(_scale_box(box, 1 / s), landmarks(work, box).astype(np.float64) / s, True)


def crop_to_face(
    image: Image.Image, size: int, margin: float = MARGIN, index: int | None = None
) -> Image.Image:
    """Frame a single photo like ``affinegan prepare`` frames clips: ``size x size`` RGB.

    The generator only knows faces framed as in its training clips, so an arbitrary photo must
    be cropped the same way before encoding. EXIF orientation (phone photos) is applied first.
    """
    name = getattr(image, "filename", "") or f"the {image.width}x{image.height} image"
    rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    face = pick_face(rgb, name, index)
    return Image.fromarray(crop(rgb, face_crop_box([face.box], margin), size))
