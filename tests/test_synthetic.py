"""The synthetic dataset: layout the loader reads, exact masks, determinism, visible expressions."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affinegan.data import cartoon
from affinegan.data.cartoon import render_face
from affinegan.data.cartoon_pose import EXPRESSIONS
from affinegan.data.synthetic import render_dataset
from affinegan.errors import AffineGANError

SMALL = {"clips": 3, "test_clips": 2, "size": 32, "min_frames": 4, "max_frames": 9}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _meta(root: Path, split: str) -> dict[str, dict]:
    return {
        p.stem: json.loads(p.read_text()) for p in sorted((root / split / "meta").glob("*.json"))
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_dataset(tmp_path_factory.mktemp("synth") / "ds", expression="smile", **SMALL)


def test_layout_and_meta(dataset: Path) -> None:
    train = _meta(dataset, "train")
    assert sorted(p.name for p in (dataset / "train" / "img").iterdir()) == sorted(train)
    assert sorted(train) == ["clip_0000", "clip_0001", "clip_0002"]
    assert sorted(p.name for p in (dataset / "train" / "patch").iterdir()) == sorted(train)
    for name, meta in train.items():
        assert meta["expression"] == "smile"
        frames = sorted(p.name for p in (dataset / "train" / "img" / name).iterdir())
        assert frames == meta["frames"] == [f"{k:04d}.png" for k in range(1, len(frames) + 1)]
        assert SMALL["min_frames"] <= len(frames) <= SMALL["max_frames"]
        assert sorted(p.name for p in (dataset / "train" / "patch" / name).iterdir()) == frames
        intensity = meta["intensity"]
        assert len(intensity) == len(frames)
        assert intensity[0] == 0.0
        assert all(b >= a for a, b in zip(intensity, intensity[1:], strict=False))
        assert 0.8 <= intensity[-1] <= 1.0
        for frame in frames:
            with Image.open(dataset / "train" / "img" / name / frame) as img:
                assert (img.mode, img.size) == ("RGB", (32, 32))
            with Image.open(dataset / "train" / "patch" / name / frame) as img:
                assert (img.mode, img.size) == ("L", (32, 32))
                mask = np.asarray(img)
            assert set(np.unique(mask)) == {0, 255}
    test = _meta(dataset, "test")
    assert sorted(test) == ["test_0000", "test_0001"]
    assert not (dataset / "test" / "patch").exists()
    for name, meta in test.items():
        frames = sorted(p.name for p in (dataset / "test" / "img" / name).iterdir())
        assert frames == meta["frames"] and meta["intensity"][0] == 0.0
    assert not list(dataset.rglob("*.tmp*"))
    assert "seed=0" in (dataset / "README.txt").read_text()


def test_held_out_identities_are_disjoint(tmp_path: Path) -> None:
    root = render_dataset(tmp_path / "ds", clips=12, test_clips=6, size=32, max_frames=8)
    train = {m["identity_seed"] for m in _meta(root, "train").values()}
    test = {m["identity_seed"] for m in _meta(root, "test").values()}
    assert len(train) == 12 and len(test) == 6
    assert not train & test
    first = np.asarray(Image.open(root / "test" / "img" / "test_0000" / "0001.png"))
    for clip in (root / "train" / "img").iterdir():
        assert np.abs(np.asarray(Image.open(clip / "0001.png")).astype(int) - first).mean() > 5


def test_deterministic_and_seed_dependent(tmp_path: Path, dataset: Path) -> None:
    again = render_dataset(tmp_path / "again", expression="smile", **SMALL)
    assert _files(again) == _files(dataset)
    other = render_dataset(tmp_path / "other", expression="smile", seed=1, **SMALL)
    seeds = {m["identity_seed"] for m in _meta(dataset, "train").values()}
    assert seeds.isdisjoint(m["identity_seed"] for m in _meta(other, "train").values())


def test_rerender_replaces_previous_render(tmp_path: Path) -> None:
    root = render_dataset(tmp_path / "ds", clips=3, test_clips=1, size=32, max_frames=9)
    render_dataset(root, clips=1, test_clips=0, size=32, min_frames=2, max_frames=3)
    assert [p.name for p in (root / "train" / "img").iterdir()] == ["clip_0000"]
    assert len(list((root / "train" / "img" / "clip_0000").iterdir())) <= 3
    assert not (root / "test").exists()


def test_refuses_foreign_data(tmp_path: Path) -> None:
    (tmp_path / "ds" / "train" / "img").mkdir(parents=True)
    with pytest.raises(AffineGANError, match="not a synthetic dataset"):
        render_dataset(tmp_path / "ds", clips=1, size=32)


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_expression_visibly_changes(expression: str) -> None:
    for identity in range(4):
        neutral, _ = render_face(identity, expression, 0.0)
        peak, _ = render_face(identity, expression, 1.0)
        assert np.abs(peak.astype(int) - neutral).mean() > 0.4
        assert (np.abs(peak.astype(int) - neutral).max(axis=2) > 40).sum() >= 25


def test_dataset_clip_ends_differ_from_start(dataset: Path) -> None:
    for clip in (dataset / "train" / "img").iterdir():
        frames = sorted(clip.iterdir())
        first = np.asarray(Image.open(frames[0])).astype(int)
        last = np.asarray(Image.open(frames[-1])).astype(int)
        assert np.abs(last - first).mean() > 0.5


def test_smile_change_concentrates_on_mouth() -> None:
    for identity in range(6):
        neutral, mask0 = render_face(identity, "smile", 0.0)
        peak, mask1 = render_face(identity, "smile", 1.0)
        diff = np.abs(peak.astype(int) - neutral).sum(axis=2)
        mouth = (mask0 > 0) | (mask1 > 0)
        assert mask1.sum() > mask0.sum()  # the mouth widens and opens
        assert diff[mouth].mean() > 8 * diff[~mouth].mean()
        assert diff[mouth].sum() > 0.4 * diff.sum()


def test_blink_leaves_mouth_alone() -> None:
    for identity in range(4):
        neutral, mask0 = render_face(identity, "blink", 0.0)
        closed, mask1 = render_face(identity, "blink", 1.0)
        assert np.array_equal(mask0, mask1)
        assert np.array_equal(neutral[mask0 > 0], closed[mask0 > 0])
        rows = np.nonzero(np.abs(closed.astype(int) - neutral).sum(axis=(1, 2)))[0]
        assert rows.size and rows.max() < np.nonzero(mask0.any(axis=1))[0].min()


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_mask_covers_every_mouth_pixel(expression: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        (identity, a, (0.3 * identity, -0.4)) for identity in range(3) for a in (0.0, 0.6, 1.0)
    ]
    with_mouth = [render_face(i, expression, a, 48, off) for i, a, off in cases]
    monkeypatch.setattr(cartoon, "_draw_mouth", lambda *args: None)
    for (frame, mask), (i, a, off) in zip(with_mouth, cases, strict=True):
        bare, _ = render_face(i, expression, a, 48, off)
        drawn = np.abs(frame.astype(int) - bare).sum(axis=2) > 0
        assert drawn.any()
        assert not (drawn & (mask == 0)).any()


def test_offset_moves_head_not_background() -> None:
    frame, mask = render_face(7, "surprise", 1.0, 64)
    moved, moved_mask = render_face(7, "surprise", 1.0, 64, offset=(2.0, 1.0))
    assert np.array_equal(frame[:4], moved[:4])  # the backdrop stays put
    shifted = np.zeros_like(mask)
    shifted[1:, 2:] = mask[:-1, :-2]
    overlap = ((shifted > 0) & (moved_mask > 0)).sum() / ((shifted > 0) | (moved_mask > 0)).sum()
    assert overlap > 0.9


def test_zoom_frames_a_close_up_of_the_same_face() -> None:
    """A close-up is the centre of the frame drawn ``zoom`` times larger, head motion included:
    the same face, its mouth over about zoom^2 as many pixels."""
    frame, mask = render_face(7, "surprise", 1.0, 64, offset=(0.4, -0.2))
    close, close_mask = render_face(7, "surprise", 1.0, 64, offset=(0.4, -0.2), zoom=1.5)
    full, full_mask = render_face(7, "surprise", 1.0, 96, offset=(0.6, -0.3))
    y0 = round(cartoon.ZOOM_CENTRE_Y * 96 - 32)
    np.testing.assert_array_equal(close, full[y0 : y0 + 64, 16:80])
    np.testing.assert_array_equal(close_mask, full_mask[y0 : y0 + 64, 16:80])
    assert 1.6 < (close_mask > 0).sum() / (mask > 0).sum() < 2.5  # its 1 px dilation stays 1 px
    assert not np.array_equal(close, frame)


def test_zoomed_dataset_says_so(tmp_path: Path) -> None:
    root = render_dataset(tmp_path / "ds", zoom=1.5, **SMALL)
    assert "zoom=1.5" in (root / "README.txt").read_text()
    assert all(m["zoom"] == 1.5 for m in _meta(root, "train").values())
    plain = render_dataset(tmp_path / "plain", **SMALL)
    assert "zoom" not in (plain / "README.txt").read_text()
    assert all("zoom" not in m for m in _meta(plain, "train").values())


@pytest.mark.parametrize("size", [32, 100, 256])
def test_sizes(size: int) -> None:
    frame, mask = render_face(3, "anger", 0.7, size)
    assert frame.shape == (size, size, 3) and frame.dtype == np.uint8
    assert mask.shape == (size, size) and mask.dtype == np.uint8
    assert 0 < (mask > 0).mean() < 0.1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"expression": "frown"},
        {"clips": 0},
        {"test_clips": -1},
        {"size": 31},
        {"seed": -1},
        {"min_frames": 1},
        {"min_frames": 10, "max_frames": 9},
        {"zoom": 0.5},
        {"zoom": 4.0},
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(AffineGANError):
        render_dataset(tmp_path / "ds", **kwargs)
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    "args", [(0, "wink", 0.5), (0, "smile", 1.5), (0, "smile", -0.1), (-1, "smile", 0.5)]
)
def test_render_face_bad_arguments(args: tuple) -> None:
    with pytest.raises(AffineGANError):
        render_face(*args)


def test_synth_command_frames_close_ups(tmp_path: Path) -> None:
    from affinegan.cli import main

    small = ["--size", "32", "--min_frames", "2", "--max_frames", "3"]
    assert (
        main(["synth", "--out", str(tmp_path / "a"), "--zoom", "1.5", "--clips", "1", *small]) == 0
    )
    assert "zoom=1.5" in (tmp_path / "a" / "README.txt").read_text()
    mix = ["synth", "--out", str(tmp_path / "m"), "--expression", "smile,blink", "--mix"]
    assert main([*mix, "--zoom", "1.5", "--test_clips", "1", *small]) == 0
    assert all(m["zoom"] == 1.5 for m in _meta(tmp_path / "m", "test").values())
    assert main(["synth", "--out", str(tmp_path / "b"), "--zoom", "0.5", *small]) == 2
    assert not (tmp_path / "b").exists()
