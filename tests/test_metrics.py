"""Every metric against values worked out by hand on tiny arrays; the face embedder on real
and blank frames."""

import math

import numpy as np
import pytest

from affinegan import metrics
from affinegan.data.images import load_rgb


def test_psnr_hand_value_and_identical_cap():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 10  # one of 12 values off by 10: MSE = 100 / 12
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 * 12 / 100))
    assert metrics.psnr(a, a) == metrics.PSNR_MAX_DB == 100.0
    assert metrics.psnr(a, a, max_db=math.inf) == math.inf
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(a, np.zeros((2, 3, 3), np.uint8))


def test_ssim_identical_and_constant_images():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert metrics.ssim(img, img) == pytest.approx(1.0)
    # Constant images: no variance, so SSIM is the luminance term (2xy + C1) / (x^2 + y^2 + C1).
    x, y, c1 = 100.0, 110.0, (0.01 * 255) ** 2
    a = np.full((7, 7, 3), x, np.uint8)
    b = np.full((7, 7, 3), y, np.uint8)
    assert metrics.ssim(a, b) == pytest.approx((2 * x * y + c1) / (x * x + y * y + c1))


def test_acd_hand_values_and_missing_faces():
    o, e1, e2 = np.zeros(2), np.array([3.0, 4.0]), np.array([0.0, 1.0])
    m = metrics.acd_m([o, e1, None], [e1, e1, o])
    assert (m.value, m.pairs, m.missing) == (2.5, 2, 1)  # (5 + 0) / 2; the None is left out
    i = metrics.acd_i([e1, e2, None], o)
    assert (i.value, i.pairs, i.missing) == (3.0, 2, 1)  # (5 + 1) / 2
    c = metrics.acd_c([o, e1, e2, None])
    assert c.value == pytest.approx((5 + 1 + math.sqrt(9 + 9)) / 3)
    assert (c.pairs, c.missing) == (3, 1)
    same = metrics.acd_m([e1, e2], [e1, e2])
    assert same.value == 0.0 and metrics.acd_c([e1, e1]).value == 0.0
    assert math.isnan(metrics.acd_i([e1], None).value)
    assert math.isnan(metrics.acd_c([None, None]).value)


def test_rank_correlations_by_hand():
    assert metrics.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert metrics.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ties: ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4) -> 4.5 / sqrt(4.5 * 5).
    assert metrics.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert math.isnan(metrics.spearman([1, 1, 1], [1, 2, 3]))
    np.testing.assert_allclose(metrics.rankdata([3, 1, 3, 2]), [3.5, 1, 3.5, 2])
    # Two concordant pairs, one discordant: (2 - 1) / 3.
    assert metrics.kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # tau-b with a tie in x: C=2, D=0, ties_x=1 -> 2 / sqrt(3 * 2).
    assert metrics.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))


def test_monotonic_fraction_and_smoothness():
    assert metrics.monotonic_fraction([0, 0.2, 0.1, 0.3]) == pytest.approx(2 / 3)
    assert metrics.monotonic_fraction([0, 0.2, 0.19], tol=0.02) == 1.0
    frames = np.zeros((3, 2, 2, 3), np.uint8)
    frames[1:] = 10
    s = metrics.smoothness(frames)
    assert (s.mean, s.max) == (5.0, 10.0)
    assert metrics.smoothness(frames[:1]).mean != metrics.smoothness(frames[:1]).mean  # nan


def test_match_positions_same_relative_place():
    assert metrics.match_positions(4, 4) == [0, 1, 2, 3]
    assert metrics.match_positions(3, 5) == [0, 2, 4]
    assert metrics.match_positions(5, 3) == [0, 1, 1, 2, 2]  # halves round up
    assert metrics.match_positions(3, 20) == [0, 10, 19]


def test_face_embedder_real_frame_and_blank(shared_dir):
    pytest.importorskip("dlib")
    from affinegan.evaluate import face_embedding

    path = shared_dir / "data/examples/happy/train/img/vid_0001/0001.jpg"
    frame = np.asarray(load_rgb(path, 128))
    e = face_embedding(frame)
    assert e is not None and e.shape == (128,)
    assert metrics.acd_m([e], [face_embedding(frame.copy())]).value == 0.0
    assert face_embedding(np.full((64, 64, 3), 128, np.uint8)) is None
