"""Every metric against values worked out by hand on tiny arrays; the face embedder on real
and blank frames."""

import math

import numpy as np
import pytest

from affinegan.data.images import load_rgb
from affinegan.evaluation import metrics


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
    from affinegan.evaluation.evaluate import face_embedding

    path = shared_dir / "data/examples/happy/train/img/vid_0001/0001.jpg"
    frame = np.asarray(load_rgb(path, 128))
    e = face_embedding(frame)
    assert e is not None and e.shape == (128,)
    assert metrics.acd_m([e], [face_embedding(frame.copy())]).value == 0.0
    assert face_embedding(np.full((64, 64, 3), 128, np.uint8)) is None


def _square_clip(change: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """A 16x16 grey-100 input and three truth frames whose 4x4 square at rows/columns 4..7
    moves by 0, change / 2 and change levels."""
    inp = np.full((16, 16, 3), 100, np.uint8)
    truth = np.stack([inp, inp, inp]).copy()
    truth[1, 4:8, 4:8] += np.uint8(change / 2)
    truth[2, 4:8, 4:8] += np.uint8(change)
    return inp, truth


def test_expression_region_is_the_changed_square_dilated():
    inp, truth = _square_clip()
    square = np.zeros((16, 16), bool)
    square[4:8, 4:8] = True
    grown = np.zeros((16, 16), bool)
    grown[3:9, 3:9] = True  # one pixel around it, diagonals included
    assert (metrics.expression_region(truth, inp, dilate=0) == square).all()
    assert (metrics.expression_region(truth, inp, dilate=1) == grown).all()
    assert (metrics.expression_region(truth, inp) == grown).all()  # default at 16 px: 1 px
    assert metrics.region_margin(64) == 1 and metrics.region_margin(256) == 4
    # More than the threshold: a change of exactly 20 levels is not an expression.
    assert not metrics.expression_region(truth[:2], inp).any()
    _, faint = _square_clip(change=42)
    assert metrics.expression_region(faint[:2], inp, dilate=0).sum() == 16
    # Grey frames, and one channel changing is enough.
    assert metrics.expression_region(truth[..., 0], inp[..., 0]).sum() == 36
    red = np.stack([inp, inp]).copy()
    red[1, 0, 0, 0] = 200
    assert metrics.expression_region(red, inp, dilate=0).sum() == 1
    with pytest.raises(ValueError, match="do not match"):
        metrics.expression_region(truth, inp[:8])


def test_region_psnr_ssim_and_strength_by_hand():
    inp, truth = _square_clip()
    region = metrics.expression_region(truth, inp)  # 36 pixels, the square's 16 changed
    _, half = _square_clip(change=20)  # every frame half as far from the input as the truth
    # Peak frame: the square is 20 levels off in 16 of 36 pixels; copying the input, 40.
    assert metrics.region_psnr(half[2], truth[2], region) == pytest.approx(
        10 * math.log10(255**2 * 36 / (400 * 16))
    )
    gain = metrics.region_psnr(half[2], truth[2], region) - metrics.region_psnr(
        inp, truth[2], region
    )
    assert gain == pytest.approx(10 * math.log10(4))  # half the error: +6.02 dB
    assert metrics.region_psnr(truth[2], truth[2], region) == metrics.PSNR_MAX_DB
    # The whole frame dilutes the same error over 256 pixels.
    assert metrics.psnr(half[2], truth[2]) - metrics.region_psnr(
        half[2], truth[2], region
    ) == pytest.approx(10 * math.log10(256 / 36))
    # Strength: half of the truth's change, per frame and pooled; the input copied: 0.
    assert metrics.expression_strength(half[2], truth[2], inp, region) == pytest.approx(0.5)
    assert metrics.expression_strength(half, truth, inp, region) == pytest.approx(0.5)
    assert metrics.expression_strength(truth, truth, inp, region) == 1.0
    assert metrics.expression_strength(np.stack([inp] * 3), truth, inp, region) == 0.0
    assert math.isnan(metrics.expression_strength(half[0], truth[0], inp, region))
    # Region SSIM: identical there -> 1, even when the frames differ far outside it.
    far = truth[2].copy()
    far[15, 15] = 0
    assert metrics.region_ssim(far, truth[2], region) == pytest.approx(1.0)
    assert metrics.ssim(far, truth[2]) < 1.0
    assert metrics.region_ssim(half[2], truth[2], region) < 1.0


def test_region_ssim_is_the_ssim_map_averaged_over_the_region():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = np.clip(a + rng.integers(-30, 30, a.shape), 0, 255).astype(np.uint8)
    region = np.zeros((16, 16), bool)
    region[2:9, 5:14] = True
    _, full = structural_similarity(
        a.astype(float), b.astype(float), data_range=255, channel_axis=-1, full=True
    )
    assert metrics.region_ssim(a, b, region) == pytest.approx(full[region].mean())


def test_empty_region_is_undefined_never_a_crash():
    inp = np.full((16, 16, 3), 100, np.uint8)
    still = np.stack([inp, inp])
    region = metrics.expression_region(still, inp)
    assert not region.any()
    assert math.isnan(metrics.region_psnr(inp, inp, region))
    assert math.isnan(metrics.region_ssim(inp, inp, region))
    assert math.isnan(metrics.expression_strength(still, still, inp, region))
    with pytest.raises(ValueError, match="region"):
        metrics.region_psnr(inp, inp, region[:8])


def test_region_ignores_head_motion_but_not_new_shapes():
    # A vertical edge (50 | 200) moved one pixel and then half a pixel, and a new dark square.
    inp = np.full((16, 16, 3), 200, np.uint8)
    inp[:, :8] = 50
    moved = np.stack([inp, inp]).copy()
    moved[0, :, 8] = 50  # one pixel to the right
    moved[1, :, 8] = 125  # half a pixel: the two sides interpolated
    moved[1, 2:4, 11:13] = 0
    plain = metrics.motion_tolerant_change(moved, inp, motion=0)
    assert plain[0, 0, 8, 0] == 150 and plain[1, 0, 8, 0] == 75
    assert not metrics.motion_tolerant_change(moved, inp, motion=1)[:, :, 8].any()
    region = metrics.expression_region(moved, inp, dilate=0)  # default motion at 16 px: 1
    expected = np.zeros((16, 16), bool)
    expected[2:4, 11:13] = True
    assert (region == expected).all()
    assert metrics.expression_region(moved, inp, dilate=0, motion=0)[:, 8].all()
