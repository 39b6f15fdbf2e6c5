"""Intensity curves shared by the web demo and ``affinegan generate --curve``."""

import numpy as np
import pytest

from affinegan.errors import AffineGANError
from affinegan.generation.curves import CURVES, alpha_curve


@pytest.mark.parametrize("name", CURVES)
@pytest.mark.parametrize("n", [1, 2, 3, 8, 9])
def test_every_curve_has_n_frames_from_neutral(name, n):
    alphas = alpha_curve(name, n, peak=0.8)
    assert len(alphas) == n
    assert alphas[0] == 0.0
    assert all(isinstance(a, float) for a in alphas)
    assert max(alphas) <= 0.8 + 1e-12


def test_linear_is_linspace_to_the_peak():
    assert alpha_curve("linear", 5, 2.0) == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    assert alpha_curve("linear", 8)[-1] == 1.0


def test_ease_in_out_is_smoothstep():
    a = np.array(alpha_curve("ease-in-out", 11))
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(a, t * t * (3 - 2 * t))
    assert a[-1] == 1.0
    steps = np.diff(a)
    assert (steps > 0).all() and steps[0] < steps[5] > steps[-1]  # slow, fast, slow
    np.testing.assert_allclose(a + a[::-1], 1.0)  # symmetric about the middle


@pytest.mark.parametrize("n", [3, 4, 7, 8, 16])
def test_there_and_back_peaks_once_and_returns(n):
    a = np.array(alpha_curve("there-and-back", n, 0.9))
    assert (a == 0.9).sum() == 1
    top = int(a.argmax())
    assert top == n // 2
    assert a[0] == 0.0 and a[-1] == 0.0
    assert (np.diff(a[: top + 1]) > 0).all() and (np.diff(a[top:]) < 0).all()


def test_odd_there_and_back_is_a_palindrome():
    assert alpha_curve("there-and-back", 5) == [0.0, 0.5, 1.0, 0.5, 0.0]


@pytest.mark.parametrize(
    "args, match",
    [(("wobble", 8), "unknown intensity curve 'wobble'"), (("linear", 0), "at least 1")],
)
def test_bad_arguments_are_one_line_errors(args, match):
    with pytest.raises(AffineGANError, match=match):
        alpha_curve(*args)
    for peak in (float("nan"), 1e30, -0.5, 2.01):
        with pytest.raises(AffineGANError, match="expected an intensity from 0 to 2"):
            alpha_curve("linear", 4, peak)
