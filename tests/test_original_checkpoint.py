"""A checkpoint written by the original code gives the original's outputs, self-contained.

``fixtures/upstream-unet256-ngf4-compact/`` (2.2 MB, in the repo so a clean clone runs this) was
written by the original AffineGAN code: a unet_256 generator with ngf 4 trained on real clips, a
synthetic input face, and the original's outputs at three intensities (float16, compared within
2e-3) with the innermost features of both streams (fixture.json says how). The larger ngf 8
fixture in ``../shared`` is tested by test_networks.py when present.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from affinegan.checkpoint import infer_generator_options, load_weights
from affinegan.cli import main as cli_main
from affinegan.core.networks import Generator
from affinegan.data.images import load_input_image
from affinegan.generation.generate import animate, load_generator

FIXTURE = Path(__file__).parent / "fixtures" / "upstream-unet256-ngf4-compact"
TOLERANCE = 2e-3  # the expected outputs are stored as float16
UINT8_TOLERANCE = 1  # grey levels, after rounding to uint8 on both sides


@pytest.fixture(scope="module")
def upstream():
    meta = json.loads((FIXTURE / "fixture.json").read_text())
    expected = dict(np.load(FIXTURE / "expected.npz"))
    image = np.asarray(Image.open(FIXTURE / "input.png").convert("RGB"), dtype=np.float32)
    x = torch.from_numpy(image / 255 * 2 - 1).permute(2, 0, 1)  # as fixture.json states
    return meta, expected, x


def _expected_frames(meta: dict, expected: dict) -> np.ndarray:
    """The original's outputs as the uint8 HWC frames a writer would produce."""
    frames = [expected[f"output_alpha{a:.2f}"].astype(np.float32) for a in meta["alphas"]]
    stacked = np.stack(frames).transpose(0, 2, 3, 1)
    return np.round((np.clip(stacked, -1, 1) + 1) / 2 * 255).astype(np.int16)


def test_options_are_read_from_the_weights(upstream):
    meta, _, _ = upstream
    opts = infer_generator_options(load_weights(FIXTURE / "latest_net_G.pth"))
    assert opts["netG"] == meta["netG"] and opts["ngf"] == meta["ngf"]
    assert opts["norm"] == meta["norm"] and opts["blend"] is False


def test_input_loading_matches_the_fixture(upstream):
    _, _, x = upstream
    loaded = load_input_image(FIXTURE / "input.png", upstream[0]["image_size"])
    assert loaded.shape == x.shape and loaded.dtype == torch.float32
    assert (loaded - x).abs().max() <= 1e-6


def test_plain_calls_reproduce_outputs_and_features(upstream):
    meta, expected, x = upstream
    G = Generator(meta["netG"], meta["ngf"], norm=meta["norm"], dropout=meta["dropout"])
    G.load_state_dict(load_weights(FIXTURE / "latest_net_G.pth"))
    G.eval()
    with torch.no_grad():
        for a in meta["alphas"]:
            out, _ = G(x[None], 1.0, a)
            ref = expected[f"output_alpha{a:.2f}"].astype(np.float32)
            assert np.abs(out[0].numpy() - ref).max() <= TOLERANCE, a
        for (b, t), name in (((1.0, 0.0), "feature_base"), ((0.0, 1.0), "feature_res")):
            _, feat = G(x[None], b, t)
            assert np.abs(feat[0].numpy() - expected[name]).max() <= 1e-4, name


def test_generation_road_reproduces_outputs(upstream, tmp_path):
    """A run folder holding only the original's ``latest_net_G.pth``: the model is rebuilt from
    the weights' shapes, the face encoded once and decoded at every alpha."""
    meta, expected, x = upstream
    run = tmp_path / "original"
    run.mkdir()
    shutil.copy(FIXTURE / "latest_net_G.pth", run)
    model = load_generator(run)
    assert model.size == meta["image_size"]
    model.G.eval()
    with torch.no_grad():
        enc = model.G.encode(x[None])
        frames = model.G.decode(enc, 1.0, torch.tensor(meta["alphas"]))
        for i, a in enumerate(meta["alphas"]):
            ref = expected[f"output_alpha{a:.2f}"].astype(np.float32)
            assert np.abs(frames[i].numpy() - ref).max() <= TOLERANCE, a
        got = animate(model.G, x, meta["alphas"]).astype(np.int16)
    assert np.abs(got - _expected_frames(meta, expected)).max() <= UINT8_TOLERANCE


def test_generate_command_on_the_original_checkpoint(upstream, tmp_path):
    """``affinegan generate`` on the original's run folder writes the original's frames."""
    meta, expected, _ = upstream
    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "original").mkdir(parents=True)
    shutil.copy(FIXTURE / "latest_net_G.pth", checkpoints / "original")
    photo = shutil.copy(FIXTURE / "input.png", tmp_path / "face.png")
    alphas = ",".join(str(a) for a in meta["alphas"])
    argv = ["generate", "--name", "original", "--checkpoints_dir", str(checkpoints)]
    argv += ["--results_dir", str(tmp_path / "results"), "--input", str(photo)]
    argv += ["--alphas", alphas, "--format", "png", "--gpu_ids", "-1"]
    assert cli_main(argv) == 0
    written = sorted(
        (tmp_path / "results").rglob("*_fake_B_list*.png"),
        key=lambda p: int(p.stem.rsplit("list", 1)[1]),
    )
    assert len(written) == len(meta["alphas"])
    got = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in written]).astype(np.int16)
    assert np.abs(got - _expected_frames(meta, expected)).max() <= UINT8_TOLERANCE
