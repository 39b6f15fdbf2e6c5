"""What an expression does to a cartoon face's geometry, at an intensity in [0, 1]; several
expressions at once add their changes (the synthetic mixes of multi-expression models)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from affinegan.errors import AffineGANError

EXPRESSIONS: tuple[str, ...] = ("smile", "surprise", "anger", "blink")


@dataclass(frozen=True)
class Pose:
    """Expression-driven geometry changes; the neutral pose is all defaults."""

    brow_raise: float = 0.0
    brow_tilt: float = 0.0
    brow_in: float = 0.0
    brow_arch: float = 0.0
    eye_up: float = 1.0
    eye_lo: float = 1.0
    mouth_w: float = 1.0
    mouth_lift: float = 0.0
    open_u: float = 0.0
    open_l: float = 0.0
    roundness: float = 0.0
    teeth: float = 0.0
    tongue: float = 0.0
    lip: float = 1.0
    cheek_lift: float = 0.0
    crease: float = 0.0


def expression_pose(expression: str, a: float) -> Pose:
    """Map an intensity to geometry; every field is continuous in ``a`` and neutral at 0."""
    if expression == "smile":
        opening = a * a
        return Pose(
            brow_raise=0.008 * a,
            eye_up=1.0 - 0.18 * a,
            eye_lo=1.0 - 0.65 * a,
            mouth_w=1.0 + 0.3 * a,
            mouth_lift=0.05 * a,
            open_u=0.008 * opening,
            open_l=0.045 * opening,
            teeth=0.5,
            lip=1.0 - 0.25 * a,
            cheek_lift=0.025 * a,
            crease=a,
        )
    if expression == "surprise":
        return Pose(
            brow_raise=0.06 * a,
            brow_arch=0.015 * a,
            eye_up=1.0 + 0.6 * a,
            eye_lo=1.0 + 0.3 * a,
            mouth_w=1.0 - 0.42 * a,
            open_u=0.032 * a,
            open_l=0.052 * a,
            roundness=a,
            tongue=0.3,
        )
    if expression == "anger":
        return Pose(
            brow_raise=-0.022 * a,
            brow_tilt=0.04 * a,
            brow_in=0.016 * a,
            eye_up=1.0 - 0.45 * a,
            eye_lo=1.0 - 0.3 * a,
            mouth_w=1.0 - 0.12 * a,
            mouth_lift=-0.04 * a,
            lip=1.0 - 0.5 * a,
        )
    return Pose(eye_up=1.0 - a, eye_lo=1.0 - a)  # blink: only the lids move


def check_expression(expression: str) -> None:
    if expression not in EXPRESSIONS:
        choices = ", ".join(EXPRESSIONS)
        raise AffineGANError(f"unknown expression {expression!r}; choose one of {choices}")


# Fields that say what is drawn rather than how far a shape moved: a mix takes the largest.
_KINDS = ("teeth", "tongue")


def mixed_pose(intensities: Mapping[str, float]) -> Pose:
    """Several expressions at once: each moves the geometry as it would alone and the moves add
    up (lid openings clipped at closed); what the open mouth shows comes from the strongest.
    One expression gives exactly ``expression_pose``."""
    for name in intensities:
        check_expression(name)
    poses = [expression_pose(n, float(a)) for n, a in intensities.items()]
    if len(poses) == 1:
        return poses[0]
    neutral = Pose()
    values = {}
    for f in fields(Pose):
        vals = [getattr(p, f.name) for p in poses]
        if f.name in _KINDS:
            values[f.name] = max(vals)
        else:
            base = getattr(neutral, f.name)
            values[f.name] = base + sum(v - base for v in vals)
    values["eye_up"] = max(0.0, values["eye_up"])
    values["eye_lo"] = max(0.0, values["eye_lo"])
    return Pose(**values)
