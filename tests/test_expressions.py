"""Multi-expression pieces without training: streams, mixes, heads, names, data, synthetic mixes."""

import json

import numpy as np
import pytest
import torch

from affinegan.checkpoint import infer_generator_options
from affinegan.core.discriminators import AlphaDiscriminator, PatchDiscriminator
from affinegan.core.networks import Generator, init_weights
from affinegan.data.cartoon_pose import expression_pose, mixed_pose
from affinegan.data.dataset import scan_expressions
from affinegan.data.synthetic import render_expressions, render_mix_clips
from affinegan.errors import AffineGANError
from affinegan.generation.expressions import plan


def _generator(expressions: int, blend: bool = False) -> Generator:
    torch.manual_seed(0)
    G = Generator(
        "unet_64", ngf=4, dropout=False, noise_std=0.0, blend=blend, expressions=expressions
    )
    # a non-zero init so that different residual streams give visibly different codes
    return init_weights(G, "normal", 0.2).eval()


def _faces(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_one_expression_keeps_the_original_keys() -> None:
    keys = set(_generator(1).state_dict())
    assert "model.down_res.0.weight" in keys
    assert not any("down_res_expr" in k for k in keys)
    assert infer_generator_options(_generator(1).state_dict())["expressions"] == 1


def test_each_expression_has_its_own_residual_stream_and_the_base_is_shared() -> None:
    G = _generator(2)
    sd = G.state_dict()
    assert "model.down_res_expr.1.0.weight" in sd and "model.down_res.0.weight" not in sd
    assert infer_generator_options(sd)["expressions"] == 2
    x = _faces(1)
    e0, e1 = G.encode(x, expression=torch.tensor([0])), G.encode(x, expression=torch.tensor([1]))
    assert torch.equal(e0.bottom_base, e1.bottom_base)
    assert not torch.allclose(e0.bottom_res, e1.bottom_res)
    G.expression = 1  # the default expression of encode()
    assert torch.equal(G.encode(x).bottom_res, e1.bottom_res)


def test_per_sample_expressions_match_encoding_each_sample_alone() -> None:
    G = _generator(2)
    x = _faces(3)
    which = torch.tensor([1, 0, 1])
    enc = G.encode(x, expression=which)
    for i in range(3):
        alone = G.encode(x[i : i + 1], expression=which[i : i + 1])
        for a, b in zip(enc.tensors(), alone.tensors(), strict=True):
            torch.testing.assert_close(a[i : i + 1], b, rtol=1e-5, atol=1e-6)
    a, rest = G.encode_pair(x[:1], x[1:], expression=which[:1])
    torch.testing.assert_close(a.bottom_res, G.encode(x[:1], expression=which[:1]).bottom_res)
    assert rest.bottom_res is None


@pytest.mark.parametrize("blend", [False, True])
def test_a_mix_column_decodes_like_the_single_expression(blend: bool) -> None:
    G = _generator(2, blend=blend)
    x = _faces(1)
    alphas = torch.tensor([0.0, 0.4, 1.0])
    mix = G.encode_mix(x, [0, 1])
    with torch.no_grad():
        for e in (0, 1):
            weights = torch.zeros(3, 2)
            weights[:, e] = alphas
            single = G.decode(G.encode(x, expression=torch.tensor([e])), 1.0, alphas)
            torch.testing.assert_close(G.decode(mix, 1.0, weights), single, rtol=1e-5, atol=1e-5)
        both = G.decode(mix, 1.0, torch.tensor([[1.0, 1.0]]))
        smile = G.decode(mix, 1.0, torch.tensor([[1.0, 0.0]]))
        blink = G.decode(mix, 1.0, torch.tensor([[0.0, 1.0]]))
    assert (both - smile).abs().max() > 1e-3 and (both - blink).abs().max() > 1e-3


def test_bad_expression_indices_and_mix_shapes_are_refused() -> None:
    G = _generator(2)
    with pytest.raises(ValueError, match="0..1"):
        G.encode(_faces(1), expression=torch.tensor([2]))
    with pytest.raises(ValueError, match="only expression 0"):
        _generator(1).encode(_faces(1), expression=torch.tensor([1]))
    with pytest.raises(ValueError, match="mixing coefficients"):
        G.decode(G.encode_mix(_faces(1), [0, 1]), 1.0, torch.ones(4, 3))


def test_discriminator_heads_judge_each_sample_by_its_expression() -> None:
    torch.manual_seed(0)
    D = PatchDiscriminator(6, ndf=4, heads=3)
    x = torch.randn(4, 6, 64, 64)
    full = D.model(x)
    out = D(x, head=torch.tensor([2, 0, 1, 2]))
    assert out.shape == (4, 1, *full.shape[2:])
    for i, h in enumerate([2, 0, 1, 2]):
        assert torch.equal(out[i, 0], full[i, h])
    with pytest.raises(ValueError, match="one head per expression"):
        D(x)
    assert PatchDiscriminator(6, ndf=4)(x).shape[1] == 1


def test_a_d_alpha_per_expression_scores_each_clip_with_its_head() -> None:
    torch.manual_seed(0)
    Da = AlphaDiscriminator(5, heads=2)
    alphas = torch.rand(3, 5)
    full = Da.net(alphas)
    out = Da(alphas, torch.tensor([1, 0, 1]))
    assert out.shape == (3, 1) and torch.equal(out[:, 0], full[[0, 1, 2], [1, 0, 1]])
    assert AlphaDiscriminator(5)(alphas).shape == (3, 1)


def test_plan_fills_one_column_per_expression_each_to_its_peak() -> None:
    names = ["blink", "smile"]
    one = plan(names, "smile", "", [0.0, 0.5, 1.0])
    assert one.expressions == [1] and one.weights[:, 0].tolist() == [0.0, 0.5, 1.0]
    assert plan(names, "", "", [0.5]).expressions == [0]
    mix = plan(names, "", "smile=1,blink=0.6", [0.0, 0.5, 1.0])
    assert mix.expressions == [1, 0]
    np.testing.assert_allclose(mix.weights, [[0, 0], [0.5, 0.3], [1.0, 0.6]], atol=1e-6)
    back = plan(names, "", "smile=1,blink=1@there-and-back", [0.0, 0.5, 1.0])
    np.testing.assert_allclose(back.weights[:, 1], [0.0, 1.0, 0.0])
    assert plan([], "", "", [0.2]).expressions == [0]  # a single-expression model


@pytest.mark.parametrize(
    ("expression", "mix", "message"),
    [
        ("frown", "", "'frown': the model's expressions are blink, smile"),
        ("", "smile", "NAME=PEAK"),
        ("", "smile=x", "NAME=PEAK"),
        ("", "smile=1,smile=2", "each expression once"),
        ("", "smile=1@wobble", "unknown curve"),
        ("smile", "smile=1", "not both"),
    ],
)
def test_plan_errors_are_one_line(expression: str, mix: str, message: str) -> None:
    with pytest.raises(AffineGANError, match=message):
        plan(["blink", "smile"], expression, mix, [0.0, 1.0])


def test_a_multi_expression_root_is_scanned_per_expression(tmp_path) -> None:
    root = render_expressions(tmp_path / "multi", ["smile", "blink"], clips=2, test_clips=1)
    names, clips = scan_expressions(root, "train", use_patch=True)
    assert names == ["blink", "smile"]
    assert [(c.name, c.expression) for c in clips] == [
        ("blink_clip_0000", 0),
        ("blink_clip_0001", 0),
        ("smile_clip_0000", 1),
        ("smile_clip_0001", 1),
    ]
    names, clips = scan_expressions(root, "train", ["smile"], use_patch=True)
    assert names == ["smile"] and {c.expression for c in clips} == {0}
    with pytest.raises(AffineGANError, match="no expression 'anger' here"):
        scan_expressions(root, "train", ["anger"])
    single, clips = scan_expressions(root / "smile", "train")
    assert single == [] and len(clips) == 2
    with pytest.raises(AffineGANError, match="needs a multi-expression root"):
        scan_expressions(root / "smile", "train", ["smile"])
    (root / "smile" / "train" / "img" / "clip_0001" / "0002.png").write_bytes(b"not a png")
    with pytest.raises(AffineGANError, match="smile/train/img/clip_0001/0002.png"):
        scan_expressions(root, "train")


def test_mix_clips_rise_together_with_recorded_intensities(tmp_path) -> None:
    out = render_mix_clips(tmp_path / "mix", ["smile", "blink"], clips=2, max_frames=10)
    meta = json.loads((out / "test" / "meta" / "mix_0000.json").read_text())
    smile, blink = meta["intensities"]["smile"], meta["intensities"]["blink"]
    assert smile[0] == blink[0] == 0.0 and len(smile) == len(meta["frames"])
    ratio = [b / s for s, b in zip(smile, blink, strict=True) if s > 0.05]
    assert min(ratio) >= 0.5 and max(ratio) <= 1.0 and max(ratio) - min(ratio) < 1e-3
    assert mixed_pose({"smile": 0.7}) == expression_pose("smile", 0.7)
    closed = mixed_pose({"smile": 1.0, "blink": 1.0})
    assert closed.eye_lo == 0.0 and closed.mouth_w == expression_pose("smile", 1.0).mouth_w
