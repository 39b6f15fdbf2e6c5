"""Intensity curves: how the expression strength alpha moves over the frames of a video.

AffineGAN decodes ``z_b + alpha * z_r`` (paper Eq. 1), so a video is a list of alphas. The
web demo and ``affinegan generate --curve`` share these so that the same settings give the same
clip everywhere.
"""

from __future__ import annotations

import math

import numpy as np

from affinegan.errors import AffineGANError

CURVES: tuple[str, ...] = ("linear", "ease-in-out", "there-and-back")
# Every intensity a user or a request gives (--peak, --alphas, --mix peaks, the demo's peak and
# mix) lies in [0, MAX_INTENSITY]: 0 is the neutral input, 1 the trained peak, and the demo's
# slider stops at 2; far beyond, frames only degrade, and past float32's range they are black.
MAX_INTENSITY = 2.0


def check_intensity(value: object, what: str) -> float:
    """``value`` as an intensity in [0, MAX_INTENSITY], else one line naming ``what`` (the flag
    or setting): the one check every backend and the demo share."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not 0 <= number <= MAX_INTENSITY:  # NaN fails too
        raise AffineGANError(
            f"{what} {value}: expected an intensity from 0 to {MAX_INTENSITY:g} "
            "(0 is the neutral face, 1 the trained peak)"
        )
    return number


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
