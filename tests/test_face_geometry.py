"""The real-face figures: landmark geometry on hand-built faces, ratios, medians, and one real
neutral + smile pair where the shared data is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affinegan.evaluation.face_geometry import (
    MEASURES,
    measures,
    ratios,
    real_face_figures,
    summarize,
)

LONDON = Path(__file__).resolve().parents[2] / "shared" / "data" / "london-smile"


def _face(width: float = 40, lift: float = 0, opening: float = 0, eye: float = 10) -> np.ndarray:
    """68 points of a level face whose outer eye corners are 100 apart: mouth corners
    ``width`` apart and ``lift`` above the inner lips' midpoint, inner lips ``opening`` apart,
    eyelids ``eye`` apart, brows 20 above the eyes."""
    p = np.zeros((68, 2))
    p[36], p[45] = (0, 0), (100, 0)
    p[37:39, 1], p[43:45, 1] = -eye / 2, -eye / 2  # upper lids
    p[40:42, 1], p[46:48, 1] = eye / 2, eye / 2  # lower lids
    p[39], p[42] = (30, 0), (70, 0)
    p[17:27, 1] = -20
    p[48], p[54] = (50 - width / 2, 80 - lift), (50 + width / 2, 80 - lift)
    p[62], p[66] = (50, 80 - opening / 2), (50, 80 + opening / 2)
    return p


def test_measures_of_a_hand_built_face() -> None:
    m = measures(_face(width=40, lift=3, opening=6, eye=10))
    assert m["mouth_width"] == pytest.approx(0.40)
    assert m["corner_lift"] == pytest.approx(0.03)
    assert m["mouth_opening"] == pytest.approx(0.06)
    assert m["eye_opening"] == pytest.approx(0.10)
    assert m["brow_height"] == pytest.approx(0.20)


def test_measures_ignore_head_size_roll_and_position() -> None:
    p = _face(width=44, lift=2, opening=5)
    t = np.radians(17)
    rot = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    moved = 2.5 * p @ rot + (310, -40)
    a, b = measures(p), measures(moved)
    for key in MEASURES:
        assert b[key] == pytest.approx(a[key], abs=1e-9)


def test_ratios_compare_changes_and_skip_what_the_truth_does_not_move() -> None:
    inp, truth = measures(_face(40)), measures(_face(50, lift=4, opening=8))
    half = measures(_face(45, lift=-2, opening=4))
    r = ratios(half, inp, truth)
    assert r["mouth_width"] == pytest.approx(0.5)
    assert r["corner_lift"] == pytest.approx(-0.5)  # the wrong way
    assert r["mouth_opening"] == pytest.approx(0.5)
    assert r["eye_opening"] is None and r["brow_height"] is None  # the truth moved neither
    closed = measures(_face(50, lift=4, opening=0.5))  # a closed-mouth smile: no opening ratio
    assert ratios(half, inp, closed)["mouth_opening"] is None


def test_summarize_takes_medians_over_people_and_counts() -> None:
    def record(width: float | None, identity: float) -> dict:
        return {
            "ratios": {"mouth_width": width},
            "identity_peak": identity,
            "identity_truth": 0.2,
            "sharpness": 0.9,
            "alpha0_error": 1.0,
            "frames": 4,
            "faces_found": 3,
        }

    s = summarize([record(0.5, 0.3), record(2.0, 0.1), record(None, 0.2), None])
    assert s["people"] == 3 and s["skipped"] == 1
    assert s["mouth_width_ratio"] == pytest.approx(1.25) and s["mouth_width_people"] == 2
    assert s["identity_peak"] == pytest.approx(0.2)
    assert s["corner_lift_ratio"] is None
    assert s["frames_without_face"] == 3


@pytest.mark.skipif(not LONDON.is_dir(), reason=f"real faces not present at {LONDON}")
def test_the_truth_itself_scores_one_and_its_own_identity_distance() -> None:
    from PIL import Image

    person = LONDON / "014"
    inp, smile = (np.asarray(Image.open(person / f"000{i}.jpg").convert("RGB")) for i in (1, 2))
    fig = real_face_figures(inp, smile, [inp, smile])
    assert fig is not None and fig["faces_found"] == 2
    assert fig["ratios"]["mouth_width"] == pytest.approx(1.0)
    assert fig["identity_peak"] == pytest.approx(fig["identity_truth"])
    assert fig["alpha0_error"] == 0.0
    copy = real_face_figures(inp, smile, [inp, inp])  # no expression at all
    assert copy["ratios"]["mouth_width"] == pytest.approx(0.0)
    assert copy["sharpness"] == pytest.approx(1.0) and copy["identity_peak"] == 0.0
