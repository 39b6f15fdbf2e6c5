"""Reading and writing pixels at the edges of the model.

Files are identified by their content, never their extension (several sample ``.jpg`` frames
are really PNG). Inside the model images are float32 NCHW in [-1, 1] (``x / 255 * 2 - 1``, the
original's ``ToTensor`` + ``Normalize(0.5, 0.5)``); outside they are uint8 HWC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from affinegan.errors import AffineGANError

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
)


def _decode(path: Path, draft: bool) -> Image.Image:
    """Open and decode ``path``, turning every failure into a one-line ``AffineGANError``."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AffineGANError(f"{path}: file not found; check the path") from None
    except OSError as err:
        raise AffineGANError(f"{path}: cannot read file ({err}); check its permissions") from None
    if size == 0:
        raise AffineGANError(f"{path}: image file is empty (0 bytes); re-copy or delete it")
    try:
        with Image.open(path) as img:
            if draft and img.format == "JPEG":
                # Decode at 1/8 scale: every byte of the entropy-coded data is still read, so
                # truncation is caught, at a fraction of the cost of a full decode.
                img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except Image.UnidentifiedImageError:
        raise AffineGANError(
            f"{path}: is not an image (unrecognised content); delete it or replace it with an image"
        ) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        reason = " ".join(str(err).split())
        raise AffineGANError(
            f"{path}: cannot decode image ({reason}); the file is truncated or corrupt, "
            "re-copy or delete it"
        ) from None
    return img


def open_image(path: Path) -> Image.Image:
    """Fully decode the image at ``path`` (any format PIL knows), or raise ``AffineGANError``."""
    return _decode(path, draft=False)


def check_image(path: Path) -> None:
    """Cheaply prove ``path`` decodes (JPEGs at reduced scale), or raise ``AffineGANError``."""
    _decode(path, draft=True)


def _resize(img: Image.Image, size: int | None) -> Image.Image:
    return img if size is None else img.resize((size, size), Image.BICUBIC)


def load_rgb(path: Path, size: int | None = None) -> Image.Image:
    """Frame as RGB (grey replicated), resized to ``size x size`` bicubic, aspect ignored."""
    return _resize(open_image(path).convert("RGB"), size)


def load_mask(path: Path, size: int | None = None) -> Image.Image:
    """Mask as grey ``'L'``, resized like the frames it belongs to."""
    return _resize(open_image(path).convert("L"), size)


def uint8_to_unit(arr: np.ndarray) -> torch.Tensor:
    """uint8 pixels of any layout -> float32 tensor of the same shape in [-1, 1]."""
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
    x = (t.detach().to("cpu", torch.float32).numpy() + 1) / 2 * 255
    return (
        np.rint(np.clip(x, 0, 255))
        .astype(np.uint8)
        .transpose((1, 2, 0) if t.ndim == 3 else (0, 2, 3, 1))
    )


def load_input_image(path: Path, size: int) -> torch.Tensor:
    """What generation feeds the generator: RGB, bicubic ``size x size``, ``(3,S,S)`` in [-1, 1]."""
    return image_to_tensor(load_rgb(path, size))
