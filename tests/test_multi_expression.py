"""A tiny two-expression model end to end: train, resume exactly, generate each expression and a
mix (PyTorch and onnxruntime), export, and the web page's one slider per expression."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train import assert_same_weights, tiny, weights

from affinegan.config import GenerateConfig, TrainConfig, apply_preset
from affinegan.data.images import load_input_image
from affinegan.data.synthetic import render_expressions
from affinegan.generation.generate import generate, load_generator
from affinegan.training.train import train

pytestmark = pytest.mark.slow
NAMES = ["blink", "smile"]  # index order: the folders sorted by name


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("multi")
    return render_expressions(out, ["smile", "blink"], clips=2, test_clips=1, seed=1, max_frames=8)


def expressive(root: Path, ckdir: Path, **kw) -> TrainConfig:
    """The preset as users get it at 64 px (its intensities trained through the alphas, its
    keep loss), with an average that moves within a few steps and no budget-sized decay (a
    resumed run with a larger budget would stretch it)."""
    kw = {"preset": "expressive", "ema": 0.5, "decay_fraction": 0.0, **kw}
    return apply_preset(tiny(root, ckdir, **kw), {"ema", "decay_fraction"})


@pytest.fixture(scope="module")
def run(root, tmp_path_factory) -> Path:
    return train(expressive(root, tmp_path_factory.mktemp("ck"), max_steps=6))


def test_the_run_stores_its_expressions_and_resumes_exactly(root, run, tmp_path) -> None:
    saved = json.loads((run / "train_opt.json").read_text())
    assert saved["expressions"] == ",".join(NAMES)
    assert saved["alpha_grad"] and saved["lambda_keep"] > 0
    sd = weights(run)
    assert "model.down_res_expr.1.0.weight" in sd["G"]
    assert sd["D"]["model.11.weight"].shape[0] == 2  # one discriminator head per expression
    train(expressive(root, tmp_path, max_steps=3))
    resumed = train(expressive(root, tmp_path, max_steps=6, continue_train=True))
    assert_same_weights(weights(run), weights(resumed))


def test_d_alpha_has_a_head_per_expression(root, run) -> None:
    assert weights(run)["D_alpha"]["net.4.weight"].shape[0] == 2


def test_each_expression_and_a_mix_decode_from_one_model(root, run) -> None:
    model = load_generator(run)
    assert model.expressions == NAMES and model.G.expressions == 2
    G = model.G.eval()
    x = load_input_image(next((root / "smile" / "test" / "img").glob("*/0001.png")), 64)[None]
    with torch.no_grad():
        enc = G.encode_mix(x, [0, 1])
        blink, smile, both = G.decode(enc, 1.0, torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    eyes = slice(18, 34)  # the synthetic faces' eye rows at 64 px, and the mouth's below
    mouth = slice(40, 56)
    assert (both - smile)[:, eyes].abs().max() > 1e-4  # the mix adds the blink to the smile
    assert (both - blink)[:, mouth].abs().max() > 1e-4  # and the smile to the blink


def _generate(run: Path, root: Path, out: Path, **kw) -> list[np.ndarray]:
    cfg = GenerateConfig(
        dataroot=str(root / "smile"),
        name=run.name,
        checkpoints_dir=str(run.parent),
        results_dir=str(out),
        gpu_ids="-1",
        num_frames=3,
        eval=True,
        **kw,
    )
    images = generate(cfg) / "images"
    return [np.asarray(Image.open(p)) for p in sorted(images.glob("*_fake_B_list*.png"))]


def test_generate_picks_an_expression_or_mixes_them(root, run, tmp_path) -> None:
    first = _generate(run, root, tmp_path / "a")
    blink = _generate(run, root, tmp_path / "b", expression="blink")
    smile = _generate(run, root, tmp_path / "s", expression="smile")
    mix = _generate(run, root, tmp_path / "m", mix="smile=1,blink=1")
    assert all(np.array_equal(a, b) for a, b in zip(first, blink, strict=True))  # the default
    assert np.array_equal(mix[0], smile[0])  # frame 0: alpha 0 for every expression
    assert not np.array_equal(mix[-1], smile[-1]) and not np.array_equal(mix[-1], blink[-1])


def test_the_export_and_onnxruntime_mix_like_pytorch(root, run, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    from affinegan.export.onnx_export import export
    from affinegan.export.onnx_runtime import generate_onnx

    export(run, run / "onnx")
    assert json.loads((run / "onnx" / "model.json").read_text())["expressions"] == NAMES
    kw = dict(mix="smile=1,blink=0.6@there-and-back")
    torch_frames = _generate(run, root, tmp_path / "t", **kw)
    cfg = GenerateConfig(
        dataroot=str(root / "smile"),
        name=run.name,
        checkpoints_dir=str(run.parent),
        results_dir=str(tmp_path / "o"),
        num_frames=3,
        **kw,
    )
    images = generate_onnx(cfg) / "images"
    onnx_frames = [np.asarray(Image.open(p)) for p in sorted(images.glob("*_fake_B_list*.png"))]
    for a, b in zip(torch_frames, onnx_frames, strict=True):
        assert np.abs(a.astype(int) - b).max() <= 1


@pytest.mark.browser
def test_the_page_has_one_slider_per_expression(root, run, tmp_path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("onnxruntime")
    from test_export import NODE_MODULES, page_with_photo

    from affinegan.export.onnx_export import NPM_FILES, export
    from affinegan.export.onnx_runtime import OnnxGenerator, load_face
    from affinegan.generation.expressions import plan

    if not all((NODE_MODULES / f).is_file() for f in NPM_FILES):
        pytest.skip("onnxruntime-web not installed: npm ci --prefix web (needs Node)")
    page_dir = tmp_path / "page"
    export(run, tmp_path / "onnx", web_dir=page_dir)
    face = next((root / "smile" / "test" / "img").glob("*/0001.png"))
    mix = plan(NAMES, "", "blink=0.4,smile=0.9", [1.0])
    expected = OnnxGenerator.load(tmp_path / "onnx").animate(load_face(face, 64), [1.0], plan=mix)
    with page_with_photo(page_dir, face) as (page, blocked, errors):
        assert page.evaluate("window.affinegan.expressions()") == NAMES
        sync_api.expect(page.locator("#sliders label")).to_have_count(2)
        rgb = page.evaluate("window.affinegan.frame([0.4, 0.9])")
        got = np.array(rgb, int).reshape(64, 64, 3)
        assert np.abs(got - expected[0]).max() <= 2
        assert blocked == [] and errors == []


def test_the_demo_server_lists_and_mixes_the_expressions(root, run, tmp_path) -> None:
    from affinegan.errors import AffineGANError
    from affinegan.serving.serve import Animator, find_models

    (info,) = find_models(run.parent)
    assert info.expressions == tuple(NAMES) and "blink, smile" in info.label
    anim = Animator(run.parent, tmp_path / "out")
    face = next((root / "smile" / "test" / "img").glob("*/0001.png"))
    first = anim.animate(face, info.name, num_frames=3)
    mixed = anim.animate(face, info.name, num_frames=3, mix="smile=1,blink=1")
    assert mixed.encoding_reused  # one encoding serves every mix
    assert np.array_equal(first.frames[0], mixed.frames[0])
    assert not np.array_equal(first.frames[-1], mixed.frames[-1])
    with pytest.raises(AffineGANError, match="the model's expressions are blink, smile"):
        anim.animate(face, info.name, num_frames=3, mix="frown=1")
