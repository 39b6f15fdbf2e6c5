"""Which expressions a video animates, and how strongly on each frame (multi-expression models).

A multi-expression model decodes ``z_b + sum_e alpha_e z_r,e`` (docs/multi-expression.md), so a
video is a (frames, expressions) table of intensities. ``--expression smile`` fills one column
with the intensity curve; ``--mix smile=1,blink=0.6`` fills one column per listed expression,
each the curve scaled to its own peak (``blink=0.6@there-and-back``: a curve of its own).
Imports no torch, so the onnxruntime road shares it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affinegan.config import check_intensity
from affinegan.errors import AffineGANError
from affinegan.generation.curves import CURVES, alpha_curve


@dataclass(frozen=True)
class Plan:
    """The expressions to encode (indices into the model's names) and their intensity table."""

    expressions: list[int]
    weights: np.ndarray  # (frames, len(expressions)) float32

    def table(self, count: int) -> np.ndarray:
        """(frames, count) intensities of all ``count`` expressions of a model, 0 for those
        not listed: the ``alpha`` of an encoding that holds every expression."""
        out = np.zeros((len(self.weights), count), np.float32)
        out[:, self.expressions] = self.weights
        return out


def expression_index(names: list[str], name: str, flag: str = "--expression") -> int:
    """The index of expression ``name`` among a model's ``names`` (the first when ``name`` is
    empty); an unknown name is a one-line error that lists the model's expressions."""
    if not name:
        return 0
    if name not in names:
        known = ", ".join(names) if names else "none (a single-expression model)"
        raise AffineGANError(f"{flag} {name!r}: the model's expressions are {known}")
    return names.index(name)


def _mix_column(entry: str, names: list[str], alphas: list[float]) -> tuple[int, list[float]]:
    """``name=peak`` or ``name=peak@curve`` -> (index, that expression's intensities)."""
    name, sep, value = entry.partition("=")
    peak_text, _, curve = value.partition("@")
    try:
        peak: float | None = float(peak_text)
    except ValueError:
        peak = None
    if not sep or not name.strip() or peak is None:  # "=1" would animate the first expression
        raise AffineGANError(f"--mix {entry!r}: write NAME=PEAK or NAME=PEAK@CURVE, e.g. smile=1")
    peak = check_intensity(peak, f"--mix {name.strip()!r} peak")
    index = expression_index(names, name.strip(), "--mix")
    if curve:
        if curve not in CURVES:
            raise AffineGANError(f"--mix {entry!r}: unknown curve; use one of {', '.join(CURVES)}")
        return index, alpha_curve(curve, len(alphas), peak)
    return index, [a * peak for a in alphas]


def plan(names: list[str], expression: str, mix: str, alphas: list[float]) -> Plan:
    """The intensity table of ``--expression`` or ``--mix`` (neither: the first expression).

    ``names``: the model's expressions in index order ([] for a single-expression model, which
    then has expression 0 only).
    """
    if expression and mix:
        raise AffineGANError("give --expression or --mix, not both")
    if not mix:
        index = expression_index(names, expression)
        return Plan([index], np.asarray(alphas, dtype=np.float32).reshape(-1, 1))
    columns = [_mix_column(e, names, alphas) for e in mix.split(",") if e.strip()]
    indices = [i for i, _ in columns]
    if not columns or len(set(indices)) != len(indices):
        raise AffineGANError(f"--mix {mix!r}: list each expression once, e.g. smile=1,blink=0.6")
    weights = np.asarray([c for _, c in columns], dtype=np.float32).T
    return Plan(indices, weights)
