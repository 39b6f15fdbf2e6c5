"""Models by name, packing, paste-back into the user's photo, and the Python API.

A tiny run is trained and packed here; the photo is a synthetic cartoon face (which dlib finds)
placed into a larger canvas, so nothing needs the shared data. The shipped smile model's own
figures are measured by benchmarks/real_smile.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny import tiny_config

import affinegan
from affinegan import shipped
from affinegan.cli import main
from affinegan.data.synthetic import render_dataset, render_expressions
from affinegan.errors import AffineGANError
from affinegan.generation.expressions import plan
from affinegan.generation.generate import animate_photo, load_generator
from affinegan.generation.pasteback import place
from affinegan.generation.video import read_frames
from affinegan.training.train import train

pytestmark = pytest.mark.slow


def _train(root: Path, ckdir: Path, **kw) -> Path:
    return train(tiny_config(dataroot=str(root), checkpoints_dir=str(ckdir), name="run",
                             max_steps=2, no_html=True, train_imagenum=2, **kw))  # fmt: skip


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    """A tiny single-expression run with an EMA, packed as a shipped model would be."""
    tmp = tmp_path_factory.mktemp("packed")
    root = render_dataset(tmp / "data", "smile", clips=2, test_clips=1, max_frames=8)
    run = _train(root, tmp / "ck", ema=0.9)
    shipped.pack(run, tmp / "model")
    return tmp / "model"


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A 1000x700 'photo': a cartoon face dlib finds, enlarged, on a plain background."""
    tmp = tmp_path_factory.mktemp("photo")
    root = render_dataset(tmp / "data", "smile", clips=1, test_clips=1, size=128, seed=4)
    face = Image.open(next((root / "test" / "img").glob("*/0001.png"))).convert("RGB")
    canvas = Image.new("RGB", (1000, 700), (120, 130, 140))
    canvas.paste(face.resize((400, 400), Image.BICUBIC), (420, 150))
    canvas.save(tmp / "photo.png")
    return tmp / "photo.png"


def test_pack_writes_half_precision_safetensors_without_local_paths(packed: Path) -> None:
    from safetensors.torch import load_file

    weights = load_file(packed / "latest_net_G.safetensors")
    assert {str(v.dtype) for v in weights.values() if v.is_floating_point()} == {"torch.float16"}
    config = json.loads((packed / "train_opt.json").read_text())
    assert not set(shipped.LOCAL_OPTIONS) & set(config)
    assert config["packed_from"] == "G_ema" and config["ema"] == 0.0
    model = load_generator(packed)
    assert model.size == 64 and model.weights == "G"
    assert all(p.dtype.is_floating_point and p.dtype != np.float16 for p in model.G.parameters())


def test_models_resolve_by_name_or_folder_with_one_line_errors(
    packed: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(shipped, "SHIPPED_DIR", packed.parent)
    assert shipped.shipped_models() == {"model": packed}
    assert shipped.resolve_model("model") == packed
    assert shipped.resolve_model(packed) == packed
    with pytest.raises(AffineGANError, match="no shipped model of that name.*shipped: model"):
        shipped.resolve_model("nosuch")
    with pytest.raises(AffineGANError, match="no generator weights"):
        shipped.resolve_model(tmp_path)
    # The original's --model affineGAN names its one model class, not a folder.
    assert shipped.run_folder("affineGAN", "ck", "run") == Path("ck/run")


def test_paste_back_changes_only_the_face_and_alpha_zero_is_the_photo(
    packed: Path, photo: Path
) -> None:
    model = load_generator(packed)
    model.G.eval()
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    frames, crop = animate_photo(model, rgb, plan([], "", "", [0.0, 0.5, 1.0]))
    frames = list(frames)
    assert crop.shape == (64, 64, 3) and all(f.shape == rgb.shape for f in frames)
    assert np.array_equal(frames[0], rgb)  # alpha 0: the photo itself
    box = place(rgb, 64).box
    outside = np.ones(rgb.shape[:2], bool)
    outside[max(box.top, 0) : box.top + box.side, max(box.left, 0) : box.left + box.side] = False
    for f in frames:
        assert np.array_equal(f[outside], rgb[outside])  # nothing moves outside the face crop
    inside = ~outside
    assert np.abs(frames[-1][inside].astype(int) - rgb[inside]).max() > 0  # the face changed


def test_faces_are_picked_or_refused_in_one_line(packed: Path, photo: Path) -> None:
    model = load_generator(packed)
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    with pytest.raises(AffineGANError, match="no face found in blank"):
        animate_photo(
            model, np.full((300, 400, 3), 128, np.uint8), plan([], "", "", [0]), name="blank"
        )
    two = np.concatenate([rgb, rgb], axis=1)
    with pytest.raises(AffineGANError, match="2 faces found; pick one with --face_index 0..1"):
        animate_photo(model, two, plan([], "", "", [0]), name="two")
    right, _ = animate_photo(model, two, plan([], "", "", [0, 1]), face_index=1)
    right = list(right)[-1]
    assert np.array_equal(right[:, :1000], two[:, :1000])  # the left face is left alone
    with pytest.raises(AffineGANError, match="--face_index 5: two has 2 face"):
        animate_photo(model, two, plan([], "", "", [0]), name="two", face_index=5)


def test_generate_model_writes_the_photo_sized_video(packed: Path, photo: Path, tmp_path) -> None:
    args = ["generate", "--model", str(packed), "--input", str(photo), "--num_frames", "4",
            "--format", "mp4,gif", "--results_dir", str(tmp_path), "--gpu_ids", "-1"]  # fmt: skip
    assert main(args) == 0
    out = tmp_path / "model" / "test_latest"
    frames = read_frames(out / "photo.mp4")
    assert len(frames) == 4 and frames[0].shape == (700, 1000, 3)
    assert Image.open(out / "photo.gif").size == (640, 448)  # GIFs capped at 640 px wide
    assert main([*args, "--no_paste_back", "--results_dir", str(tmp_path / "crop")]) == 0
    assert read_frames(tmp_path / "crop" / "model" / "test_latest" / "photo.mp4")[0].shape[0] == 64


def test_api_load_animate_save(packed: Path, photo: Path, tmp_path: Path) -> None:
    model = affinegan.load(packed)
    assert model.size == 64 and model.expressions == []
    frames = model.animate(photo, alphas=[0, 0.5, 1])
    assert len(frames) == 3 and frames[0].size == (1000, 700)
    assert np.array_equal(np.asarray(frames[0]), np.asarray(Image.open(photo).convert("RGB")))
    same = model.animate(Image.open(photo), alphas=[0, 0.5, 1])  # a PIL image: the same frames
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(frames, same, strict=True)
    )
    crops = model.animate(np.asarray(Image.open(photo)), alphas=[1], paste_back=False)
    assert crops[0].size == (64, 64)
    assert len(read_frames(model.save(frames, tmp_path / "a.mp4"))) == 3
    assert Image.open(model.save(frames, tmp_path / "a.gif")).size == (640, 448)  # capped
    with pytest.raises(AffineGANError, match="expected an intensity from 0 to 2"):
        model.animate(photo, alphas=[0, float("nan")])
    assert len(list(model.save(frames, tmp_path / "pngs").glob("*.png"))) == 3
    with pytest.raises(AffineGANError, match=r"save as \.mp4, \.gif"):
        model.save(frames, tmp_path / "a.avi")
    with pytest.raises(AffineGANError, match="no shipped model"):
        affinegan.load("nosuch")


def test_api_mixes_the_expressions_of_a_multi_expression_model(photo: Path, tmp_path) -> None:
    root = render_expressions(tmp_path / "data", ["smile", "blink"], clips=1, test_clips=1,
                              max_frames=8)  # fmt: skip
    model = affinegan.load(_train(root, tmp_path / "ck"))
    assert sorted(model.expressions) == ["blink", "smile"]
    one = model.animate(photo, alphas=[0, 1], mix={"smile": 1})
    both = model.animate(photo, alphas=[0, 1], mix={"smile": 1, "blink": 1})
    assert not np.array_equal(np.asarray(one[-1]), np.asarray(both[-1]))
    with pytest.raises(AffineGANError, match="frown"):
        model.animate(photo, mix={"frown": 1})


def test_serve_offers_shipped_models_and_pastes_back(
    packed: Path, photo: Path, tmp_path: Path, monkeypatch
) -> None:
    from affinegan.serving.serve import Animator

    monkeypatch.setattr(shipped, "SHIPPED_DIR", packed.parent)
    animator = Animator(tmp_path / "no_runs", tmp_path / "out")
    assert [m.name for m in animator.models] == ["model"]
    clip = animator.animate(photo, "model", num_frames=3, auto_crop=True)
    assert clip.frames.shape == (3, 700, 1000, 3)
    assert np.array_equal(clip.frames[0], np.asarray(Image.open(photo).convert("RGB")))
    assert animator.animate(photo, "model", num_frames=2, auto_crop=True).encoding_reused
    crop = animator.animate(photo, "model", num_frames=2, auto_crop=False)
    assert crop.frames.shape == (2, 64, 64, 3)


def test_export_takes_a_model_by_name(packed: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(shipped, "SHIPPED_DIR", packed.parent)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model", "model"]) == 0
    manifest = json.loads((tmp_path / "model_onnx" / "model.json").read_text())
    assert manifest["image_size"] == 64  # written beside the user, not into the package
    assert not (packed / "onnx").exists()


def test_models_lists_the_shipped_ones_with_their_cards(packed: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(shipped, "SHIPPED_DIR", packed.parent)
    (packed / shipped.CARD_FILE).write_text("# A card\n\nA tiny test model. It smiles a bit.\n")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model: A tiny test model (card: ") and "MODEL_CARD.md" in out
    monkeypatch.setattr(shipped, "SHIPPED_DIR", packed.parent / "nothing")
    assert main(["models"]) == 0
    assert "no models are shipped" in capsys.readouterr().out


def test_the_pasted_change_drops_checkerboard_and_drift_keeps_the_expression() -> None:
    from affinegan.generation.pasteback import expression_change

    still = np.full((32, 32, 3), 100, np.uint8)
    sign = np.where(np.indices((32, 32)).sum(0) % 2, 1, -1)[..., None]
    board = (still + 6 * sign).astype(np.uint8)  # the decoder's 2-px pattern, +-6 levels
    drift = still + 2
    mouth = still.copy()
    mouth[12:20, 10:22] = 140  # a 40-level change 8 px tall: an expression
    assert np.abs(expression_change(board, still)).max() == 0  # the checkerboard: gone
    assert np.abs(expression_change(drift, still)).max() == 0  # 2 levels everywhere: drift
    kept = expression_change(mouth, still)
    assert kept[16, 16].min() > 35 and np.abs(kept[:6]).max() == 0


def test_a_folder_without_weights_does_not_hide_a_shipped_model(
    packed: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(shipped, "SHIPPED_DIR", packed.parent)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()  # e.g. a dataset or results folder of the same name
    assert shipped.resolve_model("model") == packed


def test_paste_back_turns_dropout_off(photo: Path, tmp_path: Path, monkeypatch) -> None:
    """The original's stochastic generation (dropout on) would give the alpha-0 frame and the
    others different networks: paste-back decodes every photo with dropout off, so its first
    frame is the photo."""
    import torch

    from affinegan.generation import generate as gen

    root = render_dataset(tmp_path / "data", "smile", clips=2, test_clips=1, max_frames=8)
    run = _train(root, tmp_path / "ck", no_dropout=False)
    seen = []
    real = gen.animate_photo

    def spy(model, *args, **kw):
        seen.append([m.training for m in model.G.modules() if isinstance(m, torch.nn.Dropout)])
        return real(model, *args, **kw)

    monkeypatch.setattr(gen, "animate_photo", spy)
    args = ["generate", "--checkpoints_dir", str(run.parent), "--name", run.name, "--input",
            str(photo), str(photo), "--alphas", "0,1", "--results_dir", str(tmp_path)]  # fmt: skip
    assert main([*args, "--gpu_ids", "-1", "--dropout"]) == 0
    assert len(seen) == 2 and seen[0] and not any(seen[0] + seen[1])
