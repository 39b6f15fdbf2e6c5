"""``affinegan prepare`` / ``check`` and ``crop_to_face``: raw clips to a validated dataset.

Synthetic clips are 128 px cartoons; dlib finds them because ``locate_face`` scales every frame
to a 640 px longer side before detecting. ``render_dataset`` seeds 4 and 7 give faces it finds
in every frame.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affinegan.cli import check_main, prepare_main
from affinegan.cli.command_options import PrepareOptions
from affinegan.data import align
from affinegan.data.check import check_dataset
from affinegan.data.dataset import list_frames, scan_clips
from affinegan.data.images import open_image
from affinegan.data.prepare import Source, find_sources, prepare_clip
from affinegan.data.synthetic import render_dataset
from affinegan.data.trim import head_motion, neutral_to_peak
from affinegan.errors import AffineGANError
from affinegan.evaluation.face import detect_faces
from affinegan.generation.video import write_mp4

SIZE = 128
needs_dlib = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("dlib", "face_recognition_models")),
    reason="face tools need affinegan[face]",
)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _synthetic(root: Path, seed: int) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    """Frames, ground-truth mouth masks and intensities of one synthetic training clip."""
    render_dataset(root, clips=1, test_clips=0, size=SIZE, seed=seed, min_frames=10, max_frames=12)
    clip = root / "train/img/clip_0000"
    frames = [np.asarray(open_image(p).convert("RGB")) for p in list_frames(clip)]
    masks = [np.asarray(open_image(p)) for p in list_frames(root / "train/patch/clip_0000")]
    meta = json.loads((root / "train/meta/clip_0000.json").read_text())
    return frames, masks, meta["intensity"]


@pytest.fixture(scope="module")
def smile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray], list]:
    """A synthetic smile as an MP4 whose frames ARE the synthetic frames (same coordinates)."""
    tmp = tmp_path_factory.mktemp("smile")
    frames, masks, _ = _synthetic(tmp / "data", seed=4)
    return write_mp4(frames, tmp / "smile.mp4", fps=20), frames, masks


def _no_leftovers(root: Path) -> None:
    hidden = list(root.rglob(".*"))
    assert not hidden, f"temporary files left behind: {hidden}"


# --- prepare: the happy path -------------------------------------------------------------------


@needs_dlib
def test_video_to_clip_layout_and_masks_match_ground_truth(smile, tmp_path: Path) -> None:
    video, frames, gt_masks = smile
    report = prepare_clip(Source("smile", video), tmp_path, PrepareOptions(size=SIZE, masks=True))
    assert report.ok, report.error
    assert (report.frames_read, report.frames_kept, report.no_face) == (len(frames), len(frames), 0)
    clip = scan_clips(tmp_path, "train", use_patch=True)[0]
    assert clip.name == "smile" and len(clip.frames) == len(frames)
    assert [p.name for p in clip.frames] == [f"{i:04d}.png" for i in range(1, len(frames) + 1)]
    assert {open_image(p).size for p in (*clip.frames, *clip.masks)} == {(SIZE, SIZE)}
    ious = []
    for gt, path in zip(gt_masks, clip.masks, strict=True):
        mask = np.asarray(open_image(path))
        assert set(np.unique(mask)) <= {0, 255}
        ious.append(_iou(align.crop(gt, report.box, SIZE) >= 128, mask > 0))
    assert np.mean(ious) >= 0.5, ious
    _no_leftovers(tmp_path)


@needs_dlib
def test_test_split_fps_and_max_frames(smile, tmp_path: Path) -> None:
    video, frames, _ = smile
    opts = PrepareOptions(split="test", size=64, fps=10, max_frames=4)
    report = prepare_clip(Source("smile", video), tmp_path, opts)
    assert report.ok, report.error
    assert report.frames_read == (len(frames) + 1) // 2  # 20 fps -> 10 fps keeps every other
    written = list_frames(tmp_path / "test/img/smile")
    assert [p.name for p in written] == ["0001.jpg", "0002.jpg", "0003.jpg", "0004.jpg"]
    assert open_image(written[0]).format == "JPEG" and open_image(written[0]).size == (64, 64)
    assert not (tmp_path / "test/patch").exists()


@needs_dlib
@pytest.mark.slow
def test_trim_keeps_neutral_to_peak(tmp_path: Path) -> None:
    frames, _, intensity = _synthetic(tmp_path / "data", seed=7)
    # Idle neutral start, the smile, then back to neutral: only neutral -> peak should remain.
    order = [0, 0, 0, *range(len(frames)), *range(len(frames) - 2, -1, -1)]
    folder = tmp_path / "raw"
    folder.mkdir()
    for k, i in enumerate(order):
        Image.fromarray(frames[i]).save(folder / f"f{k:03d}.png")
    (source,) = find_sources([folder])
    report = prepare_clip(source, tmp_path / "out", PrepareOptions(size=SIZE, trim=True))
    assert report.ok, report.error
    first, last = report.trimmed
    assert report.frames_kept == last - first + 1 < len(order)
    assert intensity[order[first]] <= 0.1
    assert intensity[order[last]] >= 0.8 * max(intensity)
    assert last < len(order) - 2  # the way back is cut


def _track(n: int, smile: np.ndarray, move: bool = True) -> np.ndarray:
    """A 68-point face that smiles by ``smile[t]``; the head drifts, rolls and zooms if ``move``."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 100, (68, 2))
    base[36], base[45] = (20, 40), (80, 40)
    out = []
    for t in range(n):
        p = base.copy()
        p[48:68, 0] += np.sign(p[48:68, 0] - 50) * 8 * smile[t]
        p += rng.normal(0, 0.2, p.shape)
        if move:
            a = 0.05 * np.sin(t)
            rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            p = (p @ rot.T) * (1 + 0.02 * t) + (3 * t, -2 * t)
        out.append(p)
    return np.array(out)


def test_neutral_to_peak_ignores_head_motion() -> None:
    smile = np.array([0.3, 0.1, 0.0, 0.0, 0.2, 0.5, 0.8, 1.0, 0.7, 0.3, 0.0])
    assert neutral_to_peak(_track(len(smile), smile)) == (2, 7)
    assert neutral_to_peak(_track(len(smile), smile, move=False)) == (2, 7)
    assert isinstance(neutral_to_peak(_track(8, np.zeros(8))), str)


def test_head_motion_flags_a_moving_head_only() -> None:
    smile = np.linspace(0, 1, 10)
    assert not head_motion(_track(10, smile, move=False), face_size=100).too_much()
    moving = head_motion(_track(10, smile), face_size=100)
    assert moving.too_much() and moving.shift > 0.2 and moving.zoom > 0.15


# --- prepare: failures ------------------------------------------------------------------------


@needs_dlib
@pytest.mark.slow
def test_bad_sources_fail_alone_and_write_nothing(smile, tmp_path: Path, capsys) -> None:
    video, _, _ = smile
    corrupt = tmp_path / "in/corrupt.mp4"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"not a video at all" * 100)
    ramp = np.linspace(0, 255, 96 * 96 * 3).reshape(96, 96, 3).astype(np.uint8)
    faceless = write_mp4([ramp, ramp[::-1], ramp], tmp_path / "in/faceless.mp4")
    empty = tmp_path / "in/empty"
    empty.mkdir()
    root = tmp_path / "root"
    args = [str(video), str(corrupt), str(faceless), str(empty), "--out", str(root)]
    assert prepare_main([*args, "--split", "train", "--size", "64", "--masks"]) == 1
    out = capsys.readouterr().out
    failed = {line.split(":")[0]: line for line in out.splitlines() if ": FAILED: " in line}
    assert set(failed) == {"corrupt", "faceless", "empty"}
    assert "cannot read video" in failed["corrupt"]
    assert "no face found" in failed["faceless"]
    assert "no frames or videos" in failed["empty"]
    assert "3 failed" in out
    assert sorted(p.name for p in (root / "train/img").iterdir()) == ["smile"]
    assert sorted(p.name for p in (root / "train/patch").iterdir()) == ["smile"]
    _no_leftovers(root)

    # An existing clip is kept unless --overwrite, which then replaces it.
    again = [str(video), "--out", str(root), "--split", "train", "--size", "64"]
    assert prepare_main(again) == 1
    assert "already exists" in capsys.readouterr().out
    assert prepare_main([*again, "--overwrite"]) == 0
    assert list_frames(root / "train/img/smile")[0].suffix == ".jpg"
    assert not (root / "train/patch/smile").exists()  # stale masks went with the old frames
    _no_leftovers(root)


def test_option_errors() -> None:
    with pytest.raises(AffineGANError, match="--masks only applies"):
        PrepareOptions(split="test", masks=True)
    with pytest.raises(AffineGANError, match="--max-frames 1"):
        PrepareOptions(split="train", max_frames=1)


def test_find_sources(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    (videos / "frames_clip").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(videos / "frames_clip/0001.png")
    for name in ("b.mov", "a.mp4", "notes.txt"):
        (videos / name).write_bytes(b"")
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(photo)
    found = find_sources([videos, videos / "frames_clip", photo])
    assert [(s.name, s.frames is None) for s in found] == [
        ("a", True),
        ("b", True),
        ("frames_clip", False),
        ("frames_clip", False),
        ("photo", False),
    ]


# --- prepare on real faces ---------------------------------------------------------------------


@needs_dlib
@pytest.mark.slow
def test_real_clips_masks_match_hand_drawn(shared_dir: Path, tmp_path: Path) -> None:
    happy = shared_dir / "data/examples/happy/train"
    ious = []
    for source in find_sources([happy / "img"]):
        report = prepare_clip(source, tmp_path, PrepareOptions(size=256, masks=True))
        assert report.ok, report.error
        assert report.frames_kept == len(source.frames)
        assert report.warnings == []  # still heads, face well inside the frame
        out = list_frames(tmp_path / "train/img" / source.name)
        assert detect_faces(np.asarray(open_image(out[0]).convert("RGB")))
        masks = list_frames(tmp_path / "train/patch" / source.name)
        for frame, mask in zip(source.frames, masks, strict=True):
            gt = np.asarray(open_image(happy / "patch" / source.name / frame.name).convert("L"))
            ours = np.asarray(open_image(mask)) > 0
            ious.append(_iou(align.crop(gt, report.box, 256) >= 128, ours))
    assert np.mean(ious) >= 0.4, np.mean(ious)
    assert check_dataset(tmp_path).ok


# --- crop_to_face ------------------------------------------------------------------------------


@needs_dlib
def test_crop_to_face_on_a_photo(shared_dir: Path) -> None:
    photo = open_image(shared_dir / "data/examples/happy/test/img/vid_0067/0001.jpg")
    out = align.crop_to_face(photo, 128)
    assert out.size == (128, 128) and out.mode == "RGB"
    assert detect_faces(np.asarray(out), upsample=1)


@needs_dlib
def test_crop_to_face_on_a_cartoon_and_a_blank(tmp_path: Path) -> None:
    frames, _, _ = _synthetic(tmp_path, seed=4)
    out = align.crop_to_face(Image.fromarray(frames[0]), 96)
    assert out.size == (96, 96)
    with pytest.raises(AffineGANError, match="no face found") as info:
        align.crop_to_face(Image.new("RGB", (200, 150), (90, 90, 90)), 96)
    assert "\n" not in str(info.value)


def test_crop_pads_outside_the_image() -> None:
    img = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    box = align.CropBox(-2, -2, 8)
    out = align.crop(img, box, 8)
    assert out.shape == (8, 8)
    assert out[0, 0] == img[0, 0] and out[-1, -1] == img[-1, -1]
    assert box.outside(4, 4) == pytest.approx(0.75)


# --- check -------------------------------------------------------------------------------------


def _dataset(root: Path, clips: dict[str, int], masks: bool = True) -> Path:
    rng = np.random.default_rng(0)
    for clip, n in clips.items():
        for i in range(1, n + 1):
            for part in ("img", "patch") if masks else ("img",):
                folder = root / "train" / part / clip
                folder.mkdir(parents=True, exist_ok=True)
                pixels = rng.integers(0, 256, (16, 16), dtype=np.uint8)
                Image.fromarray(pixels if part == "img" else (pixels > 127) * np.uint8(255)).save(
                    folder / f"{i:04d}.png"
                )
    return root


def test_check_exit_codes_and_all_problems_at_once(tmp_path: Path, capsys) -> None:
    good = _dataset(tmp_path / "good", {"a": 3, "b": 2})
    assert check_main([str(good)]) == 0
    assert "2 clip(s), 5 frame(s)" in capsys.readouterr().out

    no_masks = _dataset(tmp_path / "nomasks", {"a": 3}, masks=False)
    assert check_main([str(no_masks)]) == 1
    assert check_main([str(no_masks), "--no_patch"]) == 0

    bad = _dataset(tmp_path / "bad", {"a": 3, "short": 1, "nomask": 2, "corrupt": 2})
    (bad / "train/patch/nomask/0002.png").unlink()
    (bad / "train/img/corrupt/0002.png").write_bytes(b"\x89PNG broken")
    capsys.readouterr()
    assert check_main([str(bad)]) == 1
    out = capsys.readouterr().out
    assert "short: clip has 1 frame(s) but needs at least 2" in out
    assert "1 of 2 masks missing, e.g. 0002.png" in out
    assert "corrupt/0002.png" in out
    assert "FAILED: 3 problem(s)" in out

    assert check_main([str(tmp_path / "missing")]) == 1


def test_check_a_multi_expression_root_names_the_expression(tmp_path: Path, capsys) -> None:
    root = tmp_path / "moods"
    _dataset(root / "happy", {"a": 3})
    _dataset(root / "sad", {"b": 2, "short": 1}, masks=False)
    report = check_dataset(root, use_patch=False)
    assert [s.split for s in report.splits] == ["happy/train", "sad/train"]
    assert report.problems == [
        f"sad: {root / 'sad/train/img/short'}: clip has 1 frame(s) but needs at least 2 "
        "(the neutral first frame plus expression frames); add frames or remove the folder"
    ]
    assert check_main([str(root)]) == 1  # sad has no masks either
    out = capsys.readouterr().out
    assert f"sad: {root / 'sad/train/patch'}: mask folder not found" in out
    assert "happy/train: 1 clip(s), 3 frame(s)" in out and "FAILED: 2 problem(s)" in out
    assert check_main([str(root / "happy")]) == 0


def test_stabiliser_undoes_a_known_head_move() -> None:
    """A frame made by moving the first (scale, roll, shift) is moved back onto it: points
    exactly, pixels up to resampling, and uncovered borders repeat edge pixels (no black)."""
    rng = np.random.default_rng(0)
    first = np.asarray(
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), np.uint8)).resize((96, 96))
    )
    points = rng.uniform(30, 66, (68, 2))
    move = align.Stabiliser(
        1.08,
        np.array([[np.cos(0.1), np.sin(0.1)], [-np.sin(0.1), np.cos(0.1)]]),
        np.array([-5.0, 3.0]),
    )
    moved_points = move.points(points)
    moved = move.image(first)
    back = align.Stabiliser.between(moved_points, points)
    assert back.points(moved_points) == pytest.approx(points, abs=1e-6)
    restored = back.image(moved).astype(float)
    centre = slice(20, 76)
    assert np.abs(restored[centre, centre] - first[centre, centre]).mean() < 6
    assert moved.min(axis=2)[:4].mean() > 10  # the uncovered top rows are not black


@needs_dlib
@pytest.mark.slow
def test_prepare_aligns_a_real_photo_pair(shared_dir: Path, tmp_path: Path) -> None:
    """A London neutral + smile pair, taken from two spots: after prepare the smile's rigid
    landmarks (eye corners, nose) sit on the neutral's within a pixel of 128 (two pairs were
    4.5 and 3.0 px apart before)."""
    person = shared_dir / "data/london-smile/014"
    if not person.is_dir():
        pytest.skip(f"{person} not present")
    opts = PrepareOptions(
        src=(str(person),), out=str(tmp_path), split="train", size=SIZE, masks=True
    )
    report = prepare_clip(find_sources([person])[0], tmp_path, opts)
    assert report.ok, report.error
    frames = [np.asarray(Image.open(p)) for p in list_frames(report.output)]
    located = [align.locate_face(f) for f in frames]
    rigid = [f.points[[27, 28, 29, 30, 36, 39, 42, 45]] for f in located]
    assert np.abs(rigid[1] - rigid[0]).mean() < 1.0
