"""Clip layout validation, image edges, sample transforms and the resumable sampler."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from affinegan.data.dataset import (
    Clip,
    ClipDataset,
    ResumableSampler,
    list_frames,
    scan_clips,
    walk_clips,
)
from affinegan.data.images import (
    check_image,
    image_to_tensor,
    load_input_image,
    load_mask,
    load_rgb,
    open_image,
    tensor_to_uint8,
)
from affinegan.errors import AffineGANError


def _noise(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    shape = (h, w) if channels == 1 else (h, w, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _save(path: Path, arr: np.ndarray, fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, fmt)
    return path


def make_dataset(root: Path, frames: dict[str, int], patch: bool = True) -> Path:
    """``root/train/img/<clip>/000i.png`` of random noise (+ blocky 0/255 masks)."""
    for c, (clip, n) in enumerate(sorted(frames.items())):
        for i in range(n):
            _save(root / "train/img" / clip / f"{i:04d}.png", _noise(24, 20, 100 * c + i))
            if patch:
                mask = (_noise(6, 5, 1000 + 100 * c + i, 1) > 127).astype(np.uint8) * 255
                mask = np.kron(mask, np.ones((4, 4), np.uint8))
                _save(root / "train/patch" / clip / f"{i:04d}.png", mask)
    return root


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(AffineGANError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- images -------------------------------------------------------------------------------


def test_open_image_by_content_and_conversions(tmp_path: Path) -> None:
    grey = _save(tmp_path / "grey.jpg", _noise(30, 20, 0, 1), fmt="PNG")  # a PNG named .jpg
    assert open_image(grey).format == "PNG"
    rgb = load_rgb(grey)
    assert rgb.mode == "RGB" and rgb.size == (20, 30)
    arr = np.asarray(rgb)
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
    assert load_rgb(grey, 16).size == (16, 16)
    colour = _save(tmp_path / "c.bmp", _noise(30, 20, 1), fmt="BMP")
    assert load_mask(colour, 8).mode == "L" and load_mask(colour, 8).size == (8, 8)

    t = image_to_tensor(Image.fromarray(_noise(30, 20, 2)))
    assert t.shape == (3, 30, 20) and t.dtype == torch.float32
    assert t.min() >= -1 and t.max() <= 1


def test_tensor_to_uint8_round_trip_and_rounding() -> None:
    pixels = _noise(5, 7, 3)
    t = image_to_tensor(Image.fromarray(pixels))
    assert (tensor_to_uint8(t) == pixels).all()
    assert tensor_to_uint8(t[None].repeat(2, 1, 1, 1)).shape == (2, 5, 7, 3)
    values = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0]).view(1, 1, 5).expand(3, 1, 5)
    assert tensor_to_uint8(values)[0, :, 0].tolist() == [0, 0, 128, 255, 255]


def test_check_image_catches_bad_files(tmp_path: Path) -> None:
    jpeg = _save(tmp_path / "ok.jpg", _noise(64, 64, 4), fmt="JPEG")
    check_image(jpeg)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    assert str(truncated) in _error(check_image, truncated)
    assert "not found" in _error(open_image, tmp_path / "missing.png")


def test_load_input_image_matches_upstream_fixture(shared_dir: Path) -> None:
    fixture = shared_dir / "fixtures/upstream-unet256-ngf8"
    x = load_input_image(fixture / "input.jpg", 256)
    expected = np.load(fixture / "input.npy")
    assert x.shape == (3, 256, 256) and x.dtype == torch.float32
    assert np.abs(x.numpy() - expected).max() <= 1e-6


# --- scan_clips: the layout and its errors ----------------------------------------------------


def test_scan_finds_sorted_clips_and_masks(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"b": 3, "a": 4})
    (root / "train/meta").mkdir()
    (root / "train/meta/a.json").write_text("{}")
    clips = scan_clips(root, use_patch=True)
    assert [c.name for c in clips] == ["a", "b"]
    assert [p.name for p in clips[0].frames] == ["0000.png", "0001.png", "0002.png", "0003.png"]
    assert clips[0].masks == tuple(root / "train/patch/a" / p.name for p in clips[0].frames)
    assert scan_clips(root)[0].masks is None
    assert [c.name for c in scan_clips(root, max_clips=1)] == ["a"]


def test_clutter_is_skipped(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"a": 3})
    clip = root / "train/img/a"
    for name in (".DS_Store", "Thumbs.db", "notes.txt", "desktop.ini", "._0000.png"):
        (clip / name).write_bytes(b"junk")
    (clip / "sub").mkdir()
    (root / "train/img/README.txt").write_text("not a clip")
    (root / "train/patch/a/Thumbs.db").write_bytes(b"junk")
    assert [p.name for p in list_frames(clip)] == ["0000.png", "0001.png", "0002.png"]
    clips = scan_clips(root, use_patch=True)
    assert len(clips) == 1 and len(clips[0].frames) == 3
    sample = ClipDataset(clips, load_size=20, fine_size=16, use_patch=True)[0]
    assert sample["B"].shape == (5, 3, 16, 16)


def test_error_root_missing(tmp_path: Path) -> None:
    assert str(tmp_path / "nope") in _error(scan_clips, tmp_path / "nope")


def test_error_train_img_missing(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    message = _error(scan_clips, tmp_path)
    assert str(tmp_path / "train/img") in message and "train/img/<clip>/<frames>" in message


def test_error_no_clip_folders(tmp_path: Path) -> None:
    (tmp_path / "train/img").mkdir(parents=True)
    (tmp_path / "train/img/0001.jpg").write_bytes(b"")
    assert "no clip folders" in _error(scan_clips, tmp_path)


def test_error_clip_with_one_frame(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"a": 3, "b": 1})
    message = _error(scan_clips, root)
    assert str(root / "train/img/b") in message and "1 frame" in message
    assert len(scan_clips(root, min_frames=1)) == 2


def test_error_zero_byte_image(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"a": 3})
    bad = root / "train/img/a/0001.png"
    bad.write_bytes(b"")
    message = _error(scan_clips, root)
    assert str(bad) in message and "empty" in message
    assert len(scan_clips(root, check_images=False)) == 1


def test_error_truncated_jpeg(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"a": 3})
    bad = _save(root / "train/img/a/0003.jpg", _noise(64, 64, 5), fmt="JPEG")
    bad.write_bytes(bad.read_bytes()[:-200])
    message = _error(scan_clips, root)
    assert str(bad) in message and "truncated" in message


def test_error_text_named_jpg(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"a": 3})
    bad = root / "train/img/a/0001.jpg"
    bad.write_text("this is not a picture\n")
    message = _error(scan_clips, root)
    assert str(bad) in message and "is not an image" in message


def test_error_patch_dir_missing(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"a": 3}, patch=False)
    message = _error(scan_clips, root, use_patch=True)
    assert str(root / "train/patch") in message and "--no_patch" in message


def test_error_clip_without_patch_folder(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"a": 3, "b": 3})
    shutil.rmtree(root / "train/patch/b")
    message = _error(scan_clips, root, use_patch=True)
    assert str(root / "train/patch/b") in message and "--no_patch" in message


def test_error_patch_names_mismatch(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"a": 4})
    (root / "train/patch/a/0002.png").rename(root / "train/patch/a/0002.jpg")
    message = _error(scan_clips, root, use_patch=True)
    assert str(root / "train/patch/a/0002.png") in message and "--no_patch" in message


def test_error_unreadable_mask(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"a": 3})
    bad = root / "train/patch/a/0002.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert str(bad) in _error(scan_clips, root, use_patch=True)


def test_walk_yields_every_problem_and_scan_raises_the_first(tmp_path: Path) -> None:
    """One validator: ``walk_clips`` lists all problems, ``scan_clips`` stops at the first."""
    root = make_dataset(tmp_path, {"a": 3, "b": 1, "c": 3})
    (root / "train/patch/c/0001.png").unlink()
    bad = root / "train/img/a/0002.png"
    bad.write_bytes(b"")
    items = list(walk_clips(root, use_patch=True))
    problems = [item for item in items if isinstance(item, str)]
    assert [c.name for c in items if isinstance(c, Clip)] == ["a", "b", "c"]
    assert len(problems) == 3 and all("\n" not in p for p in problems)
    assert problems[0].startswith(f"{root / 'train/img/b'}: clip has 1 frame(s)")
    assert problems[1].startswith(str(root / "train/patch/c/0001.png"))
    assert "1 of 3 masks missing, e.g. 0001.png" in problems[1]
    assert problems[2].startswith(str(bad)) and "empty" in problems[2]  # images after layout
    assert _error(scan_clips, root, use_patch=True) == problems[0]
    assert [p for p in walk_clips(root, check_images=False) if isinstance(p, str)] == problems[:1]


# --- ClipDataset ------------------------------------------------------------------------------


def test_sample_shapes_ranges_and_binary_masks(tmp_path: Path) -> None:
    clips = scan_clips(make_dataset(tmp_path, {"a": 3, "b": 5}), use_patch=True)
    ds = ClipDataset(clips, load_size=20, fine_size=16, num_targets=4, use_patch=True)
    assert len(ds) == 2
    sample = ds[1]
    assert sample["clip"] == "b"
    assert sample["A"].shape == (3, 16, 16) and sample["B"].shape == (4, 3, 16, 16)
    assert sample["mask_A"].shape == (3, 16, 16) and sample["mask_B"].shape == (4, 3, 16, 16)
    for key in ("A", "B", "mask_A", "mask_B"):
        assert sample[key].dtype == torch.float32
    assert sample["A"].min() >= -1 and sample["A"].max() <= 1
    masks = torch.cat([sample["mask_A"][None], sample["mask_B"]])
    assert set(masks.unique().tolist()) == {0.0, 1.0}
    assert "mask_A" not in ClipDataset(clips, load_size=20, fine_size=16)[0]


def test_sample_names_the_frames_of_its_targets(tmp_path: Path) -> None:
    """B_index (used by --lambda_order) holds the frame number of each target in B, and
    B_position (--lambda_position) its place in the clip: 1 for the last frame."""
    clips = scan_clips(make_dataset(tmp_path, {"a": 6}, patch=False))
    ds = ClipDataset(clips, load_size=16, fine_size=16, num_targets=8, flip=False)
    sample = ds[0]
    index = sample["B_index"]
    assert index.shape == (8,) and index.min() >= 1 and index.max() <= 5
    torch.testing.assert_close(sample["B_position"], index.float() / 5)
    for i, frame in enumerate(index.tolist()):
        alone = ClipDataset(
            [Clip("a", (clips[0].frames[0], clips[0].frames[frame]), None)],
            load_size=16,
            fine_size=16,
            num_targets=1,
            flip=False,
        )[0]
        assert torch.equal(sample["B"][i], alone["B"][0])


def _crop_of(full: np.ndarray, crop: np.ndarray) -> set[tuple[int, int, bool]]:
    """Every (x, y, flip) that cuts ``crop`` (S,S,C) out of ``full`` (L,L,C)."""
    s, n = crop.shape[0], full.shape[0] - crop.shape[0]
    return {
        (x, y, flip)
        for x in range(n + 1)
        for y in range(n + 1)
        for flip in (False, True)
        if np.array_equal(full[y : y + s, x : x + s][:, :: -1 if flip else 1], crop)
    }


def test_one_crop_and_one_flip_per_sample(tmp_path: Path) -> None:
    frame, mask = _noise(24, 20, 7), (_noise(24, 20, 8, 1) > 127).astype(np.uint8) * 255
    for i in range(4):
        _save(tmp_path / f"train/img/a/{i}.png", frame)
        _save(tmp_path / f"train/patch/a/{i}.png", mask)
    clips = scan_clips(tmp_path, use_patch=True)
    full = np.asarray(load_rgb(clips[0].frames[0], 20))
    full_mask = np.repeat((np.asarray(load_mask(clips[0].masks[0], 20)) >= 192)[..., None], 3, 2)
    ds = ClipDataset(clips, load_size=20, fine_size=16, use_patch=True)
    seen = set()
    for epoch in range(24):
        ds.set_epoch(epoch)
        s = ds[0]
        assert all(torch.equal(s["A"], b) for b in s["B"])
        assert all(torch.equal(s["mask_A"], m) for m in s["mask_B"])
        (where,) = _crop_of(full, tensor_to_uint8(s["A"]))
        assert where in _crop_of(full_mask, s["mask_A"].permute(1, 2, 0).bool().numpy())
        seen.add(where)
    assert {flip for _, _, flip in seen} == {False, True}
    assert len({(x, y) for x, y, _ in seen}) > 4
    assert max(max(x, y) for x, y, _ in seen) <= 3  # original range: 0 .. load - fine - 1


def test_targets_come_from_frames_two_to_n(tmp_path: Path) -> None:
    for i in range(4):
        _save(tmp_path / f"train/img/a/{i}.png", np.full((8, 8), 50 * (i + 1), np.uint8))
    ds = ClipDataset(scan_clips(tmp_path), load_size=8, fine_size=8, num_targets=5, flip=False)
    picked = set()
    for epoch in range(10):
        ds.set_epoch(epoch)
        s = ds[0]
        assert (tensor_to_uint8(s["A"]) == 50).all()
        picked |= {int(v) // 50 - 1 for v in tensor_to_uint8(s["B"])[:, 0, 0, 0]}
    assert picked == {1, 2, 3}


def test_no_flip_and_no_crop_give_the_resized_image(tmp_path: Path) -> None:
    root = make_dataset(tmp_path, {"a": 3})
    _save(root / "train/img/a/0000.png", _noise(30, 17, 9, 1))  # grey, another size
    clips = scan_clips(root)
    ds = ClipDataset(clips, load_size=16, fine_size=16, flip=False)
    for epoch in range(4):
        ds.set_epoch(epoch)
        assert torch.equal(ds[0]["A"], load_input_image(clips[0].frames[0], 16))


def test_samples_depend_only_on_seed_epoch_index(tmp_path: Path) -> None:
    clips = scan_clips(make_dataset(tmp_path, {"a": 5, "b": 5, "c": 5}), use_patch=True)

    def samples(ds: ClipDataset, epoch: int) -> torch.Tensor:
        ds.set_epoch(epoch)
        return torch.stack(
            [torch.cat([ds[i]["A"][None], ds[i]["B"], ds[i]["mask_B"]]) for i in range(3)]
        )

    kwargs = dict(load_size=20, fine_size=16, use_patch=True, seed=3)
    one, two = ClipDataset(clips, **kwargs), ClipDataset(clips, cache_mb=0, **kwargs)
    e1 = samples(one, 1)
    assert torch.equal(e1, samples(two, 1))
    samples(one, 2)
    assert torch.equal(e1, samples(one, 1))
    assert not torch.equal(e1, samples(one, 2))
    assert not torch.equal(e1, samples(ClipDataset(clips, **{**kwargs, "seed": 4}), 1))


def test_dataloader_workers_give_identical_batches(tmp_path: Path) -> None:
    clips = scan_clips(make_dataset(tmp_path, {f"c{i}": 3 for i in range(5)}))

    def batches(num_workers: int) -> list[torch.Tensor]:
        ds = ClipDataset(clips, load_size=20, fine_size=16, num_targets=2, seed=1)
        sampler = ResumableSampler(len(ds), seed=1)
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=2,
            sampler=sampler,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
        )
        out = []
        for epoch in range(2):
            ds.set_epoch(epoch)
            sampler.set_epoch(epoch)
            out += [torch.cat([b["A"].flatten(), b["B"].flatten()]) for b in loader]
        return out

    serial, parallel = batches(0), batches(2)
    assert len(serial) == 6
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel, strict=True))


def test_dataset_rejects_bad_settings(tmp_path: Path) -> None:
    clips = scan_clips(make_dataset(tmp_path, {"a": 3}))
    assert "--loadSize" in _error(ClipDataset, clips, load_size=16, fine_size=20)
    assert "--no_patch" in _error(ClipDataset, clips, use_patch=True)


# --- ResumableSampler -------------------------------------------------------------------------


def test_sampler_is_an_epoch_seeded_permutation() -> None:
    sampler = ResumableSampler(20, seed=5)
    epoch0 = list(sampler)
    assert sorted(epoch0) == list(range(20)) and len(sampler) == 20
    assert list(ResumableSampler(20, seed=5)) == epoch0
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    assert list(ResumableSampler(20, shuffle=False)) == list(range(20))


def test_sampler_resume_yields_the_tail() -> None:
    sampler = ResumableSampler(17, seed=2)
    sampler.set_epoch(3)
    full = list(sampler)
    sampler.set_epoch(3, start=6)
    assert list(sampler) == full[6:] and len(sampler) == 11
    with pytest.raises(ValueError):
        sampler.set_epoch(3, start=18)


@pytest.mark.parametrize("n", [12, 10])
def test_sampler_rank_shards_are_disjoint_and_cover(n: int) -> None:
    shards = []
    for rank in range(3):
        sampler = ResumableSampler(n, seed=7, rank=rank, world_size=3)
        sampler.set_epoch(4)
        shards.append(list(sampler))
        assert len(sampler) == 4
    flat = [i for shard in shards for i in shard]
    assert set(flat) == set(range(n)) and len(flat) == 12
    if n == 12:
        assert len(set(flat)) == 12  # disjoint when no padding is needed
    sampler = ResumableSampler(n, seed=7, rank=1, world_size=3)
    sampler.set_epoch(4, start=2)
    assert list(sampler) == shards[1][2:]


# --- the sample data ----------------------------------------------------------------------------


def test_examples_happy(shared_dir: Path) -> None:
    root = shared_dir / "data/examples/happy"
    clips = scan_clips(root, use_patch=True)
    assert [c.name for c in clips] == ["vid_0001", "vid_0002"]
    assert all(c.masks is not None and len(c.masks) == len(c.frames) for c in clips)
    assert open_image(clips[0].frames[0]).mode == "L"
    assert image_to_tensor(load_rgb(clips[0].frames[0])).shape[0] == 3
    sample = ClipDataset(clips, use_patch=True)[0]
    assert sample["A"].shape == (3, 256, 256) and sample["B"].shape == (5, 3, 256, 256)
    assert sample["mask_B"].shape == (5, 3, 256, 256)
    assert len(scan_clips(root, phase="test", min_frames=1)) == 1
