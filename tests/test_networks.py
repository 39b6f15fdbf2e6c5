"""The generator reproduces the original's checkpoints, keys and encode/decode semantics."""

import json
import math

import numpy as np
import pytest
import torch

from affinegan.checkpoint import infer_generator_options, load_weights
from affinegan.config import canonical_netg
from affinegan.core.discriminators import AlphaDiscriminator, PatchDiscriminator
from affinegan.core.networks import MAX_FLOW, Generator, warp_image

FIXTURE = "fixtures/upstream-unet256-ngf8"


@pytest.fixture(scope="module")
def upstream(shared_dir):
    folder = shared_dir / FIXTURE
    meta = json.loads((folder / "fixture.json").read_text())
    G = Generator(meta["netG"], meta["ngf"], dropout=meta["dropout"])
    G.load_state_dict(load_weights(folder / "latest_net_G.pth"))
    x = torch.from_numpy(np.load(folder / "input.npy"))[None]
    return folder, meta, G.eval(), x


def test_original_checkpoint_reproduces_outputs(upstream):
    folder, meta, G, x = upstream
    with torch.no_grad():
        for a in meta["alphas"]:
            out, _ = G(x, 1.0, a)
            ref = np.load(folder / f"output_alpha{a:.2f}.npy")
            assert np.abs(out[0].numpy() - ref).max() <= 1e-4, a


def test_original_features_and_batched_decode(upstream):
    folder, meta, G, x = upstream
    with torch.no_grad():
        enc = G.encode(x)
        for (b, t), name in (((1.0, 0.0), "feature_base"), ((0.0, 1.0), "feature_res")):
            ref = np.load(folder / f"{name}.npy")
            assert np.abs(G.feature(enc, b, t)[0].numpy() - ref).max() <= 1e-4
            _, feat = G(x, b, t)
            assert np.abs(feat[0].numpy() - ref).max() <= 1e-4
        frames = G.decode(enc, 1.0, torch.tensor(meta["alphas"]))  # one encoding, all alphas
    for i, a in enumerate(meta["alphas"]):
        ref = np.load(folder / f"output_alpha{a:.2f}.npy")
        assert np.abs(frames[i].numpy() - ref).max() <= 1e-4


def test_state_dict_keys_match_original_layout(shared_dir):
    lines = (shared_dir / FIXTURE / "keys.txt").read_text().split("\n")
    expected = {ln.split(" ")[0]: ln.split(" ", 1)[1] for ln in lines if ln.strip()}
    sd = Generator("unet_256", 8).state_dict()
    assert {k: str(tuple(v.shape)) for k, v in sd.items()} == expected


@pytest.mark.parametrize("netg,size", [("unet_64", 64), ("unet_128", 128), ("unet_256", 256)])
def test_generator_shapes_and_inferred_options(netg, size):
    G = Generator(netg, ngf=4).eval()
    x = torch.randn(2, 3, size, size)
    out, feat = G(x, 1.0, 0.5)
    assert out.shape == x.shape and feat.shape == (2, 32, 1, 1)
    assert out.abs().max() <= 1
    opts = infer_generator_options(G.state_dict())
    assert opts == {
        "netG": netg,
        "ngf": 4,
        "input_nc": 3,
        "output_nc": 3,
        "norm": "instance",
        "blend": False,
        "warp": False,
        "expressions": 1,
    }


def test_encode_once_equals_plain_calls_per_sample_alpha():
    torch.manual_seed(0)
    G = Generator("unet_64", ngf=4).eval()
    x = torch.randn(1, 3, 64, 64)
    alphas = torch.tensor([0.0, 0.3, 1.0, 1.7])
    batched = G.decode(G.encode(x), 1.0, alphas)
    for i, a in enumerate(alphas.tolist()):
        torch.testing.assert_close(batched[i : i + 1], G(x, 1.0, a)[0], atol=1e-6, rtol=1e-5)
    # a base-only encoding decodes exactly like t = 0
    torch.testing.assert_close(G.decode(G.encode(x, residual=False)), G(x, 1.0, 0.0)[0])


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_encode_pair_equals_two_encodes(norm):
    """One base-stream batch over x and y encodes each exactly as its own call would (with
    BatchNorm, train mode, it must not pool x with y: then it runs two calls)."""
    torch.manual_seed(0)
    G = Generator("unet_64", ngf=4, norm=norm, blend=True).train()
    x, y = torch.randn(2, 3, 64, 64), torch.randn(3, 3, 64, 64)
    enc_x, enc_y = G.encode_pair(x, y)
    for got, want in ((enc_x, G.encode(x)), (enc_y, G.encode(y, residual=False))):
        assert (got.skips_res is None) == (want.skips_res is None)
        for a, b in zip(got.tensors() + [got.image], want.tensors() + [want.image], strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="residual stream over exactly 1"):
        enc_x.split(1)


def test_decode_parts_equals_plain_calls():
    """Several encodings, each at K intensities per face or base-only, decode as one batch
    exactly like one original call per frame."""
    torch.manual_seed(0)
    G = Generator("unet_64", ngf=4, blend=True).eval()
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(3, 3, 64, 64) * 2 - 1
    t = torch.tensor([0.1, 0.5, 0.9, 0.2, 0.4, 0.8])  # three per face of x
    got = G.decode_parts([(G.encode(x), t), (G.encode(y, residual=False), None)])
    want = [G(x[i // 3, None], 1.0, a)[0] for i, a in enumerate(t.tolist())]
    want += [G(y[i, None], 1.0, 0.0)[0] for i in range(3)]
    torch.testing.assert_close(got, torch.cat(want), atol=1e-6, rtol=1e-5)
    # b per face next to t per frame; a single t for every face
    b = torch.tensor([0.9, 1.1])
    got = G.decode(G.encode(x), b, t)
    want = [G(x[i // 3, None], b[i // 3].item(), a)[0] for i, a in enumerate(t.tolist())]
    torch.testing.assert_close(got, torch.cat(want), atol=1e-6, rtol=1e-5)
    got = G.decode(G.encode(x), 1.0, torch.tensor([0.5]))
    torch.testing.assert_close(got, torch.cat([G(x[i, None], 1.0, 0.5)[0] for i in range(2)]))
    with pytest.raises(ValueError, match="4 mixing coefficients for 3 encoded samples"):
        G.decode(G.encode(y), 1.0, torch.ones(4))
    with pytest.raises(ValueError, match="3/6 mixing coefficients for 2 encoded samples"):
        G.decode(G.encode(x), torch.ones(3), t)
    with pytest.raises(ValueError, match="one b for all parts"):
        G.decode_parts([(G.encode(x), t), (G.encode(y, residual=False), None)], torch.ones(9))


def test_streams_do_not_depend_on_mixing_weights():
    G = Generator("unet_64", ngf=4).eval()
    x = torch.randn(1, 3, 64, 64)
    _, f_base = G(x, 1.0, 0.0)
    _, f_res = G(x, 0.0, 1.0)
    _, f_mix = G(x, 1.0, 0.5)
    enc = G.encode(x)
    torch.testing.assert_close(f_mix, torch.relu(enc.bottom_base + 0.5 * enc.bottom_res))
    assert not torch.allclose(f_base, f_res)


def test_blend_mixes_the_input_by_the_mask():
    torch.manual_seed(0)
    plain = Generator("unet_64", ngf=4).eval()
    G = Generator("unet_64", ngf=4, blend=True).eval()
    sd = G.state_dict()
    assert set(sd) - set(plain.state_dict()) == {"model.up_mask.weight", "model.up_mask.bias"}
    assert infer_generator_options(sd)["blend"] is True
    G.load_state_dict({**plain.state_dict(), **{k: sd[k] for k in sd if "up_mask" in k}})
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    alphas = torch.tensor([0.0, 0.7])
    with torch.no_grad():
        mask_logit = G.model.up_mask.bias
        mask_logit.fill_(-40.0)  # mask 0: the input comes through unchanged
        torch.testing.assert_close(G.decode(G.encode(x), 1.0, alphas), x)
        mask_logit.fill_(40.0)  # mask 1: the plain generator's output
        expect = plain.decode(plain.encode(x), 1.0, alphas)
        torch.testing.assert_close(G.decode(G.encode(x), 1.0, alphas), expect)
        mask_logit.fill_(0.0)
        out, _ = G(x, 1.0, 0.5)
    assert out.abs().max() <= 1


def test_training_noise_only_in_training_mode():
    G = Generator("unet_64", ngf=4, dropout=False)
    x = torch.randn(1, 3, 64, 64)
    G.eval()
    assert torch.equal(G(x, 1.0, 0.2)[0], G(x, 1.0, 0.2)[0])
    G.train()
    assert not torch.equal(G(x, 1.0, 0.2)[0], G(x, 1.0, 0.2)[0])


def test_discriminators_shapes():
    D = PatchDiscriminator(6, ndf=8)
    assert D(torch.randn(3, 6, 64, 64)).shape == (3, 1, 6, 6)
    assert [k for k in D.state_dict()][:2] == ["model.0.weight", "model.0.bias"]
    Da = AlphaDiscriminator(5)
    out = Da(torch.rand(4, 5))
    assert out.shape == (4, 1) and ((out > 0) & (out < 1)).all()


def test_netg_spellings():
    assert canonical_netg("unet256") == "unet_256"
    with pytest.raises(ValueError, match="unknown --netG"):
        canonical_netg("resnet_9blocks")


def test_warp_image_moves_pixels_by_the_flow():
    """Zero flow returns the image; a constant flow shifts it by that many pixels (one pixel is
    2 / width in grid_sample's coordinates)."""
    image = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(warp_image(image, torch.zeros(2, 2, 16, 16)), image)
    shift = math.atanh(2 / 16 / MAX_FLOW)  # one pixel right, in tanh units
    flow = torch.zeros(2, 2, 16, 16)
    flow[:, 0] = shift
    moved = warp_image(image, flow)
    torch.testing.assert_close(moved[..., :-1], image[..., 1:])


def test_warp_generator_round_trips_through_its_weights():
    G = Generator("unet_64", ngf=4, blend=True, warp=True).eval()
    assert infer_generator_options(G.state_dict())["warp"]
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    out, _ = G(x, 1.0, 0.7)
    assert out.shape == x.shape and torch.isfinite(out).all()
