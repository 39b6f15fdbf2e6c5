"""The Python entry point: a model by name, a photo in, frames of the user's photo out.

    import affinegan
    model = affinegan.load("smile")              # a shipped model's name, or a run folder
    frames = model.animate("photo.jpg")          # 16 PIL images from alpha 0 to 1
    model.save(frames, "smile.mp4")              # .mp4, .gif, or a folder of PNGs

The same pieces as ``affinegan generate`` (shipped models, paste-back, ``--mix``), with no
files written until ``save``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from affinegan.config import check_intensity
from affinegan.data.images import megapixels, open_image, viewable
from affinegan.errors import AffineGANError
from affinegan.files import atomic_output
from affinegan.generation.curves import alpha_curve
from affinegan.generation.expressions import plan
from affinegan.generation.generate import LoadedModel, animate_photo, load_generator, set_mode
from affinegan.generation.results import gif_frames
from affinegan.generation.video import write_gif, write_mp4
from affinegan.options import DEFAULT_MAX_MEGAPIXELS
from affinegan.shipped import DEFAULT_MODEL, resolve_model

ImageInput = Image.Image | np.ndarray | str | Path
DEFAULT_FRAMES = 16


def _rgb(image: ImageInput) -> tuple[np.ndarray, str]:
    """Any accepted image -> (H, W, 3) uint8 as a viewer shows it, and a name for errors."""
    if isinstance(image, str | Path):
        photo = open_image(Path(image), megapixels(DEFAULT_MAX_MEGAPIXELS))
        return np.asarray(photo.convert("RGB")), str(image)
    if isinstance(image, Image.Image):  # the one loader's rules: EXIF, ICC, 16-bit, alpha
        return np.asarray(viewable(image, "the image").convert("RGB")), "the image"
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise AffineGANError(
            f"expected an (H, W, 3) uint8 array, got {array.dtype} {array.shape}; pass a PIL "
            "image, a path or uint8 RGB pixels"
        )
    return np.asarray(viewable(Image.fromarray(array), "the array").convert("RGB")), "the array"


def _mix_text(mix: Mapping[str, float]) -> str:
    """``{"smile": 1, "blink": 0.5}`` -> the ``--mix`` syntax ``smile=1,blink=0.5``."""
    return ",".join(f"{name}={float(peak)!r}" for name, peak in mix.items())


class Model:
    """A loaded generator that animates photos; see the module's example."""

    def __init__(self, loaded: LoadedModel, name: str) -> None:
        self._loaded = loaded
        self.name = name
        set_mode(loaded.G, dropout=False)

    @property
    def size(self) -> int:
        """The side of the face crop the generator works at."""
        return self._loaded.size

    @property
    def expressions(self) -> list[str]:
        """A multi-expression model's expressions ([] for a single-expression model)."""
        return list(self._loaded.expressions)

    def animate(
        self,
        image: ImageInput,
        alphas: Sequence[float] | None = None,
        mix: Mapping[str, float] | None = None,
        paste_back: bool = True,
        face_index: int | None = None,
    ) -> list[Image.Image]:
        """Frames of the face in ``image`` at intensities ``alphas`` (default 16 from 0 to 1).

        The face is found and cropped as training clips are, encoded once and decoded at every
        alpha; with ``paste_back`` each frame is the whole photo at its own size with only what
        the model changed added in. ``mix`` ({expression: peak}) animates several expressions
        of a multi-expression model together, each reaching its own peak. A photo with no
        face, or several without ``face_index`` (from 0, left to right), raises
        ``AffineGANError`` with one line.
        """
        rgb, name = _rgb(image)
        values = list(alpha_curve("linear", DEFAULT_FRAMES) if alphas is None else alphas)
        values = [check_intensity(a, "alphas: intensity") for a in values]
        if not values:
            raise AffineGANError("alphas: give at least one intensity, e.g. [0, 0.5, 1]")
        video = plan(self._loaded.expressions, "", _mix_text(mix or {}), values)
        with torch.inference_mode():
            frames, _ = animate_photo(self._loaded, rgb, video, paste_back, name, face_index)
            return [Image.fromarray(f) for f in frames]

    def save(self, frames: Sequence[Image.Image], path: str | Path, fps: float = 10.0) -> Path:
        """Write ``frames`` as an MP4 or GIF (by the suffix; a GIF at most 640 px wide), or as
        numbered PNGs into a folder (any other path); returns the path."""
        path = Path(path)
        if not frames:
            raise AffineGANError(f"{path}: no frames to save")
        arrays = [np.asarray(f if f.mode == "RGB" else f.convert("RGB")) for f in frames]
        suffix = path.suffix.lower()
        if suffix == ".mp4":
            return write_mp4(arrays, path, fps)
        if suffix == ".gif":  # at most GIF_MAX_WIDTH wide, as `affinegan generate` writes them
            return write_gif(gif_frames(np.stack(arrays)), path, fps)
        if suffix:
            raise AffineGANError(f"{path}: save as .mp4, .gif or into a folder (no suffix)")
        path.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(frames):
            with atomic_output(path / f"frame_{i:03d}.png") as tmp:
                frame.save(tmp, format="PNG")
        return path


def load(model: str | Path = DEFAULT_MODEL, device: str | torch.device = "cpu") -> Model:
    """A shipped model by name (``affinegan models`` lists them) or a run folder of
    ``affinegan train``; unknown names and folders without weights are one-line errors."""
    folder = resolve_model(model)
    loaded = load_generator(folder)
    loaded.G.to(torch.device(device))
    return Model(loaded, folder.name)
