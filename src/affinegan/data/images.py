"""Reading and writing pixels at the edges of the model.

One loader serves every command (training, ``check``, ``generate``, ``serve``, ``prepare``):
files are identified by their content, never their extension (several sample ``.jpg`` frames
are really PNG), and reach the model as an image viewer shows them, or are refused with one
line. ``viewable`` applies the EXIF orientation and the ICC colour profile, scales 16-bit
pixels to 8 bits, flattens transparency onto white and converts palette, CMYK, LAB and YCbCr
to RGB; the result is ``L`` (grey) or ``RGB``. Inside the model images are float32 NCHW in
[-1, 1] (``x / 255 * 2 - 1``, the original's ``ToTensor`` + ``Normalize(0.5, 0.5)``); outside
they are uint8 HWC.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageCms, ImageOps

from affinegan.errors import AffineGANError
from affinegan.options import DEFAULT_MAX_MEGAPIXELS

if TYPE_CHECKING:  # torch is imported where tensors are made: decoding needs no torch
    import torch

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
)
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_WITH_ALPHA = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_COLOUR = frozenset({"RGB", "RGBX", "CMYK", "YCbCr", "HSV", "P"})
_SRGB = ImageCms.createProfile("sRGB")
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1")
# The pixel limit is checked from the header before decoding, so Pillow's warning between
# its two thresholds would only repeat it, as a multi-line message.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# Damaged TIFF metadata is warned about in two lines per file; the image decodes or is refused.
warnings.filterwarnings("ignore", category=UserWarning, module="PIL.TiffImagePlugin")


def megapixels(limit: float) -> int:
    """The pixel count of a ``--max_megapixels`` value."""
    return int(limit * 1_000_000)


def _too_large(name: object, width: int, height: int, max_pixels: int) -> AffineGANError:
    return AffineGANError(
        f"{name}: image is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels), "
        f"more than the limit of {max_pixels / 1e6:g} megapixels; downscale it, or raise the "
        "limit with --max_megapixels"
    )


def _srgb(img: Image.Image) -> Image.Image:
    """Colours through the embedded ICC profile into sRGB, as colour-managed viewers show them;
    a profile that lcms cannot read is ignored, as viewers ignore it."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK"):
        return img
    colour = img.convert("RGB") if img.mode == "RGBA" else img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        out = ImageCms.profileToProfile(colour, source, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError) as err:
        log.debug("ignoring an unreadable ICC profile (%s)", err)
        return img
    if img.mode == "RGBA":
        out.putalpha(img.getchannel("A"))
    return out


def _flatten(img: Image.Image, grey: bool) -> Image.Image:
    """Transparent pixels onto white (what a page shows behind them); opaque ones unchanged."""
    rgba = img.convert("RGBA")
    if rgba.getchannel("A").getextrema()[0] < 255:
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgba = Image.alpha_composite(white, rgba)
    return rgba.convert("L" if grey else "RGB")


def viewable(img: Image.Image, name: object) -> Image.Image:
    """``img`` as an image viewer shows it, as ``L`` or ``RGB``; ``AffineGANError`` (naming
    ``name``) for pixel formats without a defined appearance."""
    out = _srgb(ImageOps.exif_transpose(img))
    mode = out.mode
    transparent = mode in _WITH_ALPHA or "transparency" in out.info
    if mode in _SIXTEEN_BIT:
        levels = np.asarray(out, dtype=np.float64) / 257  # 65535 -> 255, v * 257 -> v exactly
        out = Image.fromarray(np.clip(np.rint(levels), 0, 255).astype(np.uint8), "L")
    elif mode == "F":
        raise AffineGANError(
            f"{name}: floating-point pixels have no standard brightness range; save the image "
            "with 8 or 16 bits per channel"
        )
    elif mode == "LAB":
        lab = ImageCms.createProfile("LAB")
        out = ImageCms.profileToProfile(out, lab, _SRGB, outputMode="RGB")
    elif transparent:
        out = _flatten(out, grey=mode in ("LA", "La", "L"))
    elif mode in ("1", "L"):
        out = out.convert("L")
    elif mode in _COLOUR:
        out = out.convert("RGB")
    else:
        raise AffineGANError(
            f"{name}: unsupported pixel format {mode!r}; save it as an 8-bit RGB or grey image"
        )
    if out is not img:
        out.format = img.format
    return out


def _unrecognised(head: bytes, name: object) -> AffineGANError:
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return AffineGANError(f"{name}: HEIC/HEIF photos are not supported; export it as JPEG")
    return AffineGANError(
        f"{name}: is not an image (unrecognised content); delete it or replace it with an image"
    )


def decode(source: Path | bytes, name: object, max_pixels: int, draft: bool = False) -> Image.Image:
    """Decode a file or bytes as ``viewable`` shows it, turning every failure into one line.

    The pixel limit is checked from the header, before any pixel is decoded. ``draft`` decodes
    JPEGs at 1/8 scale: every byte of the entropy-coded data is still read, so truncation is
    caught, at a fraction of the cost.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with Image.open(stream) as img:
            if img.width * img.height > max_pixels:
                raise _too_large(name, img.width, img.height, max_pixels)
            if draft and img.format == "JPEG":
                img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
            return viewable(img, name)
    except AffineGANError:
        raise
    except Image.UnidentifiedImageError:
        head = source[:12] if isinstance(source, bytes) else Path(source).read_bytes()[:12]
        raise _unrecognised(head, name) from None
    except Image.DecompressionBombError as err:  # beyond Pillow's own limit, before ours
        found = re.search(r"\((\d+) pixels\)", str(err))
        count = f"{int(found.group(1)) / 1e6:.0f}" if found else "too many"
        raise AffineGANError(
            f"{name}: image has {count} megapixels, more than the limit of "
            f"{min(max_pixels, 2 * Image.MAX_IMAGE_PIXELS) / 1e6:g} megapixels; downscale it"
        ) from None
    except MemoryError:
        raise AffineGANError(f"{name}: image too large to decode in memory; downscale it") from None
    except Exception as err:  # noqa: BLE001 - decoders raise anything on corrupt data
        reason = " ".join(str(err).split()) or type(err).__name__
        raise AffineGANError(
            f"{name}: cannot decode image ({reason}); the file is truncated or corrupt, "
            "re-copy or delete it"
        ) from None


def _read(path: Path, max_pixels: int, draft: bool) -> Image.Image:
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AffineGANError(f"{path}: file not found; check the path") from None
    except OSError as err:
        raise AffineGANError(f"{path}: cannot read file ({err}); check its permissions") from None
    if size == 0:
        raise AffineGANError(f"{path}: image file is empty (0 bytes); re-copy or delete it")
    return decode(path, path, max_pixels, draft)


def open_image(path: Path, max_pixels: int = megapixels(DEFAULT_MAX_MEGAPIXELS)) -> Image.Image:
    """Fully decode the image at ``path`` as a viewer shows it (``L`` or ``RGB``), or raise
    ``AffineGANError``."""
    return _read(path, max_pixels, draft=False)


def check_image(path: Path, max_pixels: int = megapixels(DEFAULT_MAX_MEGAPIXELS)) -> None:
    """Cheaply prove ``path`` decodes (JPEGs at reduced scale), or raise ``AffineGANError``."""
    _read(path, max_pixels, draft=True)


def _resize(img: Image.Image, size: int | None) -> Image.Image:
    return img if size is None else img.resize((size, size), Image.BICUBIC)


def load_rgb(
    path: Path, size: int | None = None, max_pixels: int = megapixels(DEFAULT_MAX_MEGAPIXELS)
) -> Image.Image:
    """Frame as RGB (grey replicated), resized to ``size x size`` bicubic, aspect ignored."""
    return _resize(open_image(path, max_pixels).convert("RGB"), size)


def load_mask(
    path: Path, size: int | None = None, max_pixels: int = megapixels(DEFAULT_MAX_MEGAPIXELS)
) -> Image.Image:
    """Mask as grey ``'L'``, resized like the frames it belongs to."""
    return _resize(open_image(path, max_pixels).convert("L"), size)


def uint8_to_unit(arr: np.ndarray) -> torch.Tensor:
    """uint8 pixels of any layout -> float32 tensor of the same shape in [-1, 1]."""
    import torch

    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255).mul_(2).sub_(1)


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image -> ``(3,H,W)`` float32 in [-1, 1] (converted to RGB first)."""
    return uint8_to_unit(np.asarray(img.convert("RGB")).transpose(2, 0, 1))


def tensor_to_uint8(t: torch.Tensor) -> np.ndarray:
    """``(3,H,W)`` or ``(N,3,H,W)`` in [-1, 1] -> uint8 HWC / NHWC, rounded to nearest."""
    if t.ndim not in (3, 4) or t.shape[-3] != 3:
        raise ValueError(f"expected (3,H,W) or (N,3,H,W), got {tuple(t.shape)}")
    x = (t.detach().cpu().float().numpy() + 1) / 2 * 255
    return (
        np.rint(np.clip(x, 0, 255))
        .astype(np.uint8)
        .transpose((1, 2, 0) if t.ndim == 3 else (0, 2, 3, 1))
    )


def load_input_image(
    path: Path, size: int, max_pixels: int = megapixels(DEFAULT_MAX_MEGAPIXELS)
) -> torch.Tensor:
    """What generation feeds the generator: RGB, bicubic ``size x size``, ``(3,S,S)`` in [-1, 1]."""
    return image_to_tensor(load_rgb(path, size, max_pixels))
