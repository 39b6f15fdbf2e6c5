"""Intensity curves: how the expression strength alpha moves over the frames of a video.

AffineGAN decodes ``z_b + alpha * z_r`` (paper Eq. 1), so a video is a list of alphas. The
web demo and ``affinegan generate --curve`` share these so that the same settings give the same
clip everywhere.
"""

from __future__ import annotations

import numpy as np

from affinegan.config import check_intensity
from affinegan.errors import AffineGANError

CURVES: tuple[str, ...] = ("linear", "ease-in-out", "there-and-back")


def alpha_curve(name: str, num_frames: int, peak: float = 1.0) -> list[float]:
    """The ``num_frames`` alphas of curve ``name``, from 0 (the neutral input) to ``peak``.

    ``linear`` is ``linspace(0, peak, N)``; ``ease-in-out`` is its smoothstep, which starts and
    stops gently; ``there-and-back`` climbs to the peak (reached on exactly one frame, the
    middle one) and returns to 0, so a looping GIF shows the expression appear and fade.
    """
    if name not in CURVES:
        raise AffineGANError(f"unknown intensity curve {name!r}: use one of {', '.join(CURVES)}")
    if num_frames < 1:
        raise AffineGANError(f"number of frames must be at least 1, got {num_frames}")
    peak = check_intensity(peak, "peak intensity")
    if name == "there-and-back":
        top = num_frames // 2  # index of the single peak frame
        up = np.linspace(0.0, 1.0, top + 1)
        down = np.linspace(1.0, 0.0, num_frames - top)[1:]
        t = np.concatenate([up, down])
    else:
        t = np.linspace(0.0, 1.0, num_frames)
        if name == "ease-in-out":
            t = t * t * (3.0 - 2.0 * t)
    return [float(v) * peak for v in t]
