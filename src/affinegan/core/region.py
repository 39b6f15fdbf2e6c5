"""The expression region's rule, shared by the region losses (losses.py, in torch) and the
metrics that judge them (evaluation/metrics.py, in numpy), so the two cannot drift apart; no
torch here, so the command line can read the threshold without it."""

from __future__ import annotations

# A pixel belongs to a clip's expression when some truth frame differs from the input by more
# than this many 8-bit levels in some channel (the evaluate docstring says why 20).
REGION_THRESHOLD = 20.0


def region_margin(size: int) -> int:
    """Default head motion tolerated and dilation of the expression region, in pixels: 1 at
    64 px, growing with the frame (round(size / 64)) so it stays the same share of the face."""
    return max(1, round(size / 64))
