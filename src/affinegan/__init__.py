"""AffineGAN: facial image-to-video translation by a hidden affine transformation.

``affinegan.load("smile")`` returns a model that animates photos (``affinegan.api``); it is
imported on first use, so the command line and the onnxruntime backend never pay for torch.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Model", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'affinegan' has no attribute {name!r}")
