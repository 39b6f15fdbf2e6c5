"""Face detection, 68 landmarks and 128-d identity embeddings from dlib, fully offline.

The model files ship inside the ``face_recognition_models`` package; we locate its ``models/``
folder with ``importlib`` instead of importing it, because its import needs ``pkg_resources``,
which current setuptools no longer provides. Install with ``pip install affinegan[face]``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from affinegan.errors import AffineGANError

LANDMARKS_MODEL = "shape_predictor_68_face_landmarks.dat"
EMBEDDING_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
MOUTH = slice(48, 68)  # landmark indices of the outer (48-59) and inner (60-67) lips


@dataclass(frozen=True)
class Box:
    """A face rectangle in pixels (right/bottom exclusive)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def models_dir() -> Path:
    """The folder of dlib model files shipped by ``face_recognition_models``."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise AffineGANError(
            "face tools need the packages dlib-bin and face_recognition_models: "
            "pip install 'affinegan[face]'"
        )
    return Path(spec.origin).parent / "models"


@cache
def _dlib() -> Any:
    try:
        import dlib
    except ImportError:
        raise AffineGANError(
            "face tools need dlib: pip install 'affinegan[face]' (installs the dlib-bin wheel)"
        ) from None
    return dlib


@cache
def _detector() -> Any:
    return _dlib().get_frontal_face_detector()


@cache
def _predictor() -> Any:
    return _dlib().shape_predictor(str(models_dir() / LANDMARKS_MODEL))


@cache
def _encoder() -> Any:
    return _dlib().face_recognition_model_v1(str(models_dir() / EMBEDDING_MODEL))


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def detect_faces(image: np.ndarray, upsample: int = 1) -> list[Box]:
    """Frontal faces in an HWC uint8 image, largest first. Small images are upsampled."""
    rects = _detector()(_rgb(image), upsample)
    boxes = [Box(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
    return sorted(boxes, key=lambda b: b.width * b.height, reverse=True)


def _rect(box: Box) -> Any:
    return _dlib().rectangle(box.left, box.top, box.right, box.bottom)


def landmarks(image: np.ndarray, box: Box) -> np.ndarray:
    """The 68 (x, y) landmarks of the face in ``box``, float32 (68, 2)."""
    shape = _predictor()(_rgb(image), _rect(box))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def embed_face(image: np.ndarray, box: Box | None = None) -> np.ndarray | None:
    """128-d identity embedding of the (largest) face; None when no face is found.

    Distances between embeddings below about 0.6 mean the same person (dlib's threshold).
    """
    rgb = _rgb(image)
    if box is None:
        faces = detect_faces(rgb)
        if not faces:
            return None
        box = faces[0]
    shape = _predictor()(rgb, _rect(box))
    return np.array(_encoder().compute_face_descriptor(rgb, shape), dtype=np.float32)
