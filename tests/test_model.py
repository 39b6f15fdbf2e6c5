"""The objective and update order of docs/method.md, on tiny networks."""

import copy
from dataclasses import replace

import pytest
import torch
from reference import reference_train_step
from tiny import K, random_batch, tiny_config

from affinegan import losses, model
from affinegan.config import PRESETS, TrainConfig, apply_preset, build_parser, from_args
from affinegan.errors import AffineGANError
from affinegan.losses import expression_region, order_hinge, region_l1
from affinegan.model import (
    Optimizers,
    budget_schedule,
    build_nets,
    build_optimizers,
    encode_batch,
    generator_forward,
    infer_alpha,
    train_step,
)
from affinegan.networks import repeat_each


def sgd(nets) -> Optimizers:
    """lr-1 SGD: a parameter's change is minus its gradient, so updates compare gradients."""

    def opt(net):
        return torch.optim.SGD(net.parameters(), lr=1.0) if net is not None else None

    return Optimizers(opt(nets.G), opt(nets.D), opt(nets.D_alpha), opt(nets.D_patch))


def test_infer_alpha_matches_formula_per_sample():
    f0, fr = torch.randn(2, 8, 1, 1), torch.randn(2, 8, 1, 1)
    fk = torch.randn(2, 3, 8, 1, 1)
    alpha = infer_alpha(f0, fr, fk)
    for n in range(2):
        for k in range(3):
            expect = torch.abs(torch.sum((fk[n, k] - f0[n]) * fr[n])) / (fr[n].norm() + 1e-6)
            torch.testing.assert_close(alpha[n, k], expect)


def test_alpha_of_a_mixed_code_recovers_the_mix():
    f0 = torch.rand(1, 16, 1, 1)
    fr = torch.rand(1, 16, 1, 1)
    fr = fr / fr.norm()
    fk = (f0 + 0.4 * fr)[:, None]
    torch.testing.assert_close(infer_alpha(f0, fr, fk), torch.tensor([[0.4]]), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "lsgan,joint,blend",
    [
        (False, True, False),
        (True, True, False),
        (False, False, False),
        (False, True, True),
        (False, False, True),
    ],
)
def test_fast_step_equals_reference_path(lsgan, joint, blend, monkeypatch):
    """Both decode schedules (one batch; fakes then recs) give the original's gradients."""
    if not joint:
        monkeypatch.setattr(model, "JOINT_DECODE_MAX", 0)
    cfg = tiny_config(lsgan=lsgan, blend=blend)
    assert model.decode_jointly(torch.zeros(1, K, 3, 64, 64), cfg) is joint
    assert not model.decode_jointly(torch.zeros(1, K, 3, 64, 64), tiny_config(norm="batch"))
    torch.manual_seed(0)
    nets = build_nets(cfg)
    for _, net in nets.items():  # float64, so the comparison tests the math, not rounding order
        net.double()
    ref_nets = copy.deepcopy(nets)
    start = {name: copy.deepcopy(dict(net.named_parameters())) for name, net in nets.items()}
    batch = {k: v.double() for k, v in random_batch().items()}
    torch.manual_seed(1)
    fast = train_step(nets, sgd(nets), batch, cfg)
    torch.manual_seed(1)
    ref = reference_train_step(ref_nets, sgd(ref_nets), batch, cfg)
    for key in ("D_alpha", "D", "D_patch", "G"):
        torch.testing.assert_close(fast[key], ref[key].detach(), rtol=1e-5, atol=1e-6)
    for (name, net), (_, ref_net) in zip(nets.items(), ref_nets.items(), strict=True):
        for (pname, p), q in zip(net.named_parameters(), ref_net.parameters(), strict=True):
            # lr-1 SGD: a parameter's change is its gradient; compare relative to its scale
            # (floored: a bias before InstanceNorm has a true gradient of exactly 0)
            g_fast, g_ref = p - start[name][pname], q - start[name][pname]
            err = (g_fast - g_ref).abs().max() / g_ref.abs().max().clamp_min(1e-6)
            assert err <= 1e-5, f"{name}.{pname}: relative gradient error {err:.2e}"


def test_discriminator_updates_leave_generator_unchanged():
    cfg = tiny_config()
    torch.manual_seed(0)
    nets = build_nets(cfg)
    opts = build_optimizers(nets, cfg)
    before = copy.deepcopy(nets.G.state_dict())
    d_before = copy.deepcopy(nets.D.state_dict())
    opts.G.step = lambda *a, **k: None  # run everything except G's own update
    train_step(nets, opts, random_batch(), cfg)
    for k, v in nets.G.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert any(not torch.equal(v, d_before[k]) for k, v in nets.D.state_dict().items())
    assert all(p.requires_grad for _, n in nets.items() for p in n.parameters())


def test_generator_step_uses_the_updated_discriminators():
    """Order D_alpha -> D -> D_patch -> G: G's adversarial terms see the new D weights."""
    cfg = tiny_config()
    torch.manual_seed(0)
    nets = build_nets(cfg)
    opts = build_optimizers(nets, cfg)
    seen = []
    hook = nets.D.register_forward_hook(lambda m, i, o: seen.append(m.model[0].weight.clone()))
    d_before = nets.D.model[0].weight.clone()
    train_step(nets, opts, random_batch(), cfg)
    hook.remove()
    assert len(seen) == 2  # one batched call for the D update, one for G's loss
    assert torch.equal(seen[0], d_before) and not torch.equal(seen[1], d_before)


def test_losses_finite_and_named_without_patch():
    cfg = tiny_config(no_patch=True, noise_std=0.01, no_dropout=False)
    torch.manual_seed(0)
    nets = build_nets(cfg)
    assert nets.D_patch is None
    losses = train_step(nets, build_optimizers(nets, cfg), random_batch(2, patch=False), cfg)
    assert {"G", "D", "D_alpha", "G_L1", "img_recons", "G_GAN_D_alpha"} <= set(losses)
    assert "D_patch" not in losses
    assert all(torch.isfinite(v) for v in losses.values())


def test_batch_of_clips_infers_alpha_per_clip():
    cfg = tiny_config()
    torch.manual_seed(0)
    nets = build_nets(cfg)
    nets.G.eval()
    batch = random_batch(2)
    together = generator_forward(nets.G, batch["A"], batch["B"]).alpha
    for n in range(2):
        alone = generator_forward(nets.G, batch["A"][n : n + 1], batch["B"][n : n + 1]).alpha
        torch.testing.assert_close(together[n : n + 1], alone, rtol=1e-5, atol=1e-6)


def test_a_few_steps_overfit_one_batch():
    cfg = tiny_config(lambda_A=1.0, lr=1e-3)
    torch.manual_seed(0)
    nets = build_nets(cfg)
    opts = build_optimizers(nets, cfg)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    face = torch.stack([xx * 0.5, yy * 0.5, (xx * yy) * 0.5])[None]  # smooth, learnable
    batch = {"A": face, "B": torch.stack([face[0] + 0.1 * k for k in range(K)])[None]}
    batch["mask_A"], batch["mask_B"] = torch.ones_like(face), torch.ones_like(batch["B"])
    first = train_step(nets, opts, batch, cfg)["G_L1"].item()
    for _ in range(40):
        last = train_step(nets, opts, batch, cfg)["G_L1"].item()
    assert last < 0.5 * first


def test_order_hinge_by_hand():
    alpha = torch.tensor([[0.5, 0.1, 0.3, 0.9]])
    index = torch.tensor([[1, 3, 2, 2]])  # frames 1 < 2 = 2 < 3; the two frame-2 targets: no pair
    # pairs (earlier, later): (0,1) .4+m, (0,2) .2+m, (0,3) -.4+m, (2,1) .2+m, (3,1) .8+m
    m = 0.1
    expect = ((0.4 + m) + (0.2 + m) + 0.0 + (0.2 + m) + (0.8 + m)) / 5
    torch.testing.assert_close(order_hinge(alpha, index, m), torch.tensor(expect))
    ordered = torch.tensor([[0.1, 0.2, 0.5]])
    assert order_hinge(ordered, torch.tensor([[1, 2, 4]]), 0.05).item() == 0.0
    assert order_hinge(ordered, torch.tensor([[2, 2, 2]]), 0.05).item() == 0.0


def test_lambda_order_adds_its_gradient_to_the_generator_only():
    """With --lambda_order, G's gradient is the original's plus lambda * d(hinge)/d(G)."""
    cfg = tiny_config()
    torch.manual_seed(0)
    nets = build_nets(cfg)
    for _, net in nets.items():
        net.double()
    batch = {k: v.double() for k, v in random_batch().items()}
    batch["B_index"] = torch.tensor([[3, 1, 2]])
    runs = {}
    for weight in (0.0, 10.0):
        copy_nets = copy.deepcopy(nets)
        torch.manual_seed(1)
        cfg_w = tiny_config(lambda_order=weight, order_margin=0.05)
        losses = train_step(copy_nets, sgd(copy_nets), batch, cfg_w)
        runs[weight] = (copy_nets, losses)
    hinge = order_hinge(encode_batch(nets.G, batch["A"], batch["B"]).alpha, batch["B_index"], 0.05)
    assert hinge.item() > 0 and "G_order" not in runs[0.0][1]
    torch.testing.assert_close(runs[10.0][1]["G_order"], hinge.detach() * 10)
    grads = torch.autograd.grad(hinge * 10, list(nets.G.parameters()), allow_unused=True)
    for p0, p1, g in zip(
        runs[0.0][0].G.parameters(), runs[10.0][0].G.parameters(), grads, strict=True
    ):
        extra = p0 - p1  # lr-1 SGD: the change in the update is the extra gradient
        torch.testing.assert_close(extra, torch.zeros_like(p0) if g is None else g)
    for name in ("D", "D_alpha", "D_patch"):
        for p0, p1 in zip(
            getattr(runs[0.0][0], name).parameters(),
            getattr(runs[10.0][0], name).parameters(),
            strict=True,
        ):
            assert torch.equal(p0, p1)


def test_fused_adam_is_the_originals_update():
    """The fused optimisers (training) and the plain ones (the original's, timed as the
    benchmark's reference) make the same updates from the same gradients."""
    cfg = tiny_config()
    torch.manual_seed(0)
    nets = build_nets(cfg)
    plain_nets = copy.deepcopy(nets)
    fused, plain = build_optimizers(nets, cfg), build_optimizers(plain_nets, cfg, fused=False)
    assert all(o.defaults["fused"] for _, o in fused.items())
    assert not any(o.defaults["fused"] for _, o in plain.items())
    for step in range(3):
        for (_, net), (_, other) in zip(nets.items(), plain_nets.items(), strict=True):
            for p, q in zip(net.parameters(), other.parameters(), strict=True):
                p.grad = torch.randn_like(p, generator=torch.Generator().manual_seed(step))
                q.grad = p.grad.clone()
        for (_, o), (_, other_o) in zip(fused.items(), plain.items(), strict=True):
            o.step()
            other_o.step()
    for (name, net), (_, other) in zip(nets.items(), plain_nets.items(), strict=True):
        for (pname, p), q in zip(net.named_parameters(), other.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7, msg=f"{name}.{pname}")


def test_region_l1_by_hand():
    """The region is where a target leaves the input's range within a pixel by more than the
    threshold, grown by one pixel; the loss is the mean error over its pixels alone."""
    cond = torch.zeros(1, 3, 8, 8)
    edge = cond.clone()
    edge[:, :, :, 4:] = 1.0
    moved = edge.clone()
    moved[..., 1:] = edge[..., :-1]  # a contour shifted by one pixel is no expression
    assert expression_region(moved, edge, 20.0).sum() == 0
    real = cond.clone()
    real[:, :, 3:5, 3:5] = 0.5  # 64 grey levels: inside the region
    real[:, 0, 0, 7] = 0.1  # 13 levels: below the 20-level threshold
    region = expression_region(real, cond, 20.0)
    assert region.shape == (1, 1, 8, 8)
    assert region[0, 0, 2:6, 2:6].eq(1).all() and region.sum() == 16  # 2x2 grown to 4x4
    fake = real.clone()
    fake[:, :, 3:5, 3:5] = 0.0  # the expression not drawn: error 0.5 on 4 of 16 region pixels
    torch.testing.assert_close(region_l1(fake, real, region), torch.tensor(0.5 * 4 / 16))
    assert region_l1(real, real, region) == 0


def test_lambda_keep_is_the_l1_to_the_input_outside_the_region():
    """G_keep = lambda_keep x mean |fake - input| over the pixels outside the region; a change
    inside the region costs nothing, one outside does."""
    cond = torch.zeros(1, 3, 8, 8)
    real = cond.clone()
    real[:, :, 3:5, 3:5] = 0.5  # the region: rows and columns 2-5 (16 pixels)
    cfg = tiny_config(lambda_keep=2.0)
    pred = torch.zeros(1, 1, 2, 2)
    drawn = real.clone()
    drawn[:, :, 2, 2] = -0.5  # inside the region
    assert losses.g_fake_terms(pred, None, drawn, real, cond, cfg)["G_keep"] == 0
    smudged = real.clone()
    smudged[:, :, 0, 0] = 0.6  # outside: 48 pixels
    keep = losses.g_fake_terms(pred, None, smudged, real, cond, cfg)["G_keep"]
    torch.testing.assert_close(keep, torch.tensor(2.0 * 0.6 / 48))
    assert "G_keep" not in losses.g_fake_terms(pred, None, smudged, real, cond, tiny_config())


def test_lambda_mask_is_the_mean_blend_mask_outside_the_region():
    """G_mask = lambda_mask x mean of the blend mask over the pixels outside the region: a mask
    on inside the region costs nothing, one on outside does."""
    cond = torch.zeros(1, 3, 8, 8)
    real = cond.clone()
    real[:, :, 3:5, 3:5] = 0.5  # the region: rows and columns 2-5 (16 pixels)
    cfg = tiny_config(blend=True, lambda_mask=3.0)
    pred = torch.zeros(1, 1, 2, 2)
    inside = torch.zeros(1, 1, 8, 8)
    inside[:, :, 2:6, 2:6] = 1.0
    assert losses.g_fake_terms(pred, None, real, real, cond, cfg, (inside, real))["G_mask"] == 0
    spilled = inside.clone()
    spilled[:, :, 7, :] = 0.4  # 8 of the 48 pixels outside
    mask = losses.g_fake_terms(pred, None, real, real, cond, cfg, (spilled, real))["G_mask"]
    torch.testing.assert_close(mask, torch.tensor(3.0 * 0.4 * 8 / 48))
    plain = losses.g_fake_terms(
        pred, None, real, real, cond, tiny_config(blend=True), (spilled, real)
    )
    assert "G_mask" not in plain and "G_mask_in" not in plain


def test_lambda_mask_in_is_the_mean_of_the_closed_mask_inside_the_region():
    """G_mask_in = lambda_mask_in x mean of 1 - the blend mask over the region's pixels: a mask
    fully open there costs nothing, whatever it does outside; a half-open one costs half."""
    cond = torch.zeros(1, 3, 8, 8)
    real = cond.clone()
    real[:, :, 3:5, 3:5] = 0.5  # the region: rows and columns 2-5 (16 pixels)
    cfg = tiny_config(blend=True, lambda_mask_in=2.0)
    pred = torch.zeros(1, 1, 2, 2)
    mask = torch.full((1, 1, 8, 8), 0.7)  # outside: not this term's business
    mask[:, :, 2:6, 2:6] = 1.0
    terms = losses.g_fake_terms(pred, None, real, real, cond, cfg, (mask, real))
    assert terms["G_mask_in"] == 0 and "G_mask" not in terms
    mask[:, :, 2:4, 2:6] = 0.5  # 8 of the 16 region pixels half open
    got = losses.g_fake_terms(pred, None, real, real, cond, cfg, (mask, real))["G_mask_in"]
    torch.testing.assert_close(got, torch.tensor(2.0 * 0.5 * 8 / 16))


def test_lambda_draw_is_the_region_l1_of_the_drawing_before_the_blend():
    """G_draw = lambda_draw x the region L1 of the drawing the blend mixes with the input: a
    perfect blended output does not excuse a drawing that is off inside the region, and what the
    drawing does outside it costs nothing."""
    cond = torch.zeros(1, 3, 8, 8)
    real = cond.clone()
    real[:, :, 3:5, 3:5] = 0.5  # the region: rows and columns 2-5 (16 pixels)
    pred, mask = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 8, 8)
    drawing = real.clone()
    drawing[:, :, 7, :] = 1.0  # outside: the mask hides it, and the loss ignores it
    cfg = tiny_config(blend=True, lambda_draw=4.0)
    terms = losses.g_fake_terms(pred, None, real, real, cond, cfg, (mask, drawing))
    assert terms["G_draw"] == 0 and "G_mask" not in terms and "G_mask_in" not in terms
    drawing[:, :, 2:6, 2:6] += 0.25  # every region pixel and channel off by 0.25
    got = losses.g_fake_terms(pred, None, real, real, cond, cfg, (mask, drawing))
    torch.testing.assert_close(got["G_draw"], torch.tensor(4.0 * 0.25))
    off = losses.g_fake_terms(
        pred, None, real, real, cond, tiny_config(blend=True), (mask, drawing)
    )
    assert "G_draw" not in off


@pytest.mark.parametrize("joint", [True, False])
@pytest.mark.parametrize(
    "weights", [(4.0, 0.0, 0.0), (0.0, 1.5, 0.0), (4.0, 1.5, 0.0), (0, 0, 2.0)]
)
def test_the_blend_losses_train_the_mask_and_the_drawing_on_both_decode_paths(
    monkeypatch, joint, weights
):
    """The step's G_mask, G_mask_in and G_draw are the losses of the masks and drawings of the
    fakes it decoded, on either decode path; each mask loss's gradient alone reaches the mask
    head, the drawing loss's the layer that draws and not the mask head; without any of them no
    mask is asked for."""
    w_out, w_in, w_draw = weights
    cfg = tiny_config(blend=True, lambda_mask=w_out, lambda_mask_in=w_in, lambda_draw=w_draw)
    monkeypatch.setattr(model, "JOINT_DECODE_MAX", 2**40 if joint else 0)
    torch.manual_seed(0)
    nets = build_nets(cfg)
    plain = copy.deepcopy(nets)
    batch = random_batch()
    batch["B"] = batch["A"][:, None].repeat(1, K, 1, 1, 1)
    batch["B"][:, :, :, 20:40, 16:48] = 0.9  # an expression: a bright mouth, the rest still
    seen = []

    def spy_on(G):
        decode_parts = G.decode_parts

        def spy(*args, **kw):
            out = decode_parts(*args, **kw)
            if kw.get("return_blend"):
                seen.append((out[1].detach(), out[2].detach()))
            return out

        monkeypatch.setattr(G, "decode_parts", spy)

    spy_on(nets.G)
    spy_on(plain.G)
    torch.manual_seed(1)
    got = train_step(nets, sgd(nets), batch, cfg)
    ((masks, drawings),) = seen
    n_fakes = batch["B"].shape[0] * batch["B"].shape[1]
    real, cond = batch["B"].flatten(0, 1), repeat_each(batch["A"], batch["B"].shape[1])
    region = losses.expression_region(real, cond, cfg.region_threshold)
    outside = (1 - region).expand_as(masks[:n_fakes])
    assert 0 < outside.mean() < 1
    inside = 1 - outside
    if w_out:
        expected = (masks[:n_fakes] * outside).sum() / outside.sum() * w_out
        torch.testing.assert_close(got["G_mask"], expected)
    if w_in:
        expected_in = ((1 - masks[:n_fakes]) * inside).sum() / inside.sum() * w_in
        torch.testing.assert_close(got["G_mask_in"], expected_in)
    if w_draw:
        expected_draw = losses.region_l1(drawings[:n_fakes], real, region) * w_draw
        torch.testing.assert_close(got["G_draw"], expected_draw)
    assert ("G_mask" in got) == bool(w_out) and ("G_mask_in" in got) == bool(w_in)
    assert ("G_draw" in got) == bool(w_draw)
    seen.clear()
    torch.manual_seed(1)
    no_maps = replace(cfg, lambda_mask=0.0, lambda_mask_in=0.0, lambda_draw=0.0)
    train_step(plain, sgd(plain), batch, no_maps)
    assert not seen
    head, plain_head = nets.G.model.up_mask.weight, plain.G.model.up_mask.weight
    draws, plain_draws = nets.G.model.up_all[1].weight, plain.G.model.up_all[1].weight
    if w_out or w_in:
        assert not torch.allclose(head, plain_head), "the mask loss's gradient reaches the head"
    else:
        torch.testing.assert_close(head, plain_head)  # the drawing loss leaves the mask alone
        assert not torch.allclose(draws, plain_draws), "the drawing loss reaches the drawing"


def test_lambda_gan_scales_both_adversarial_terms_only():
    """--lambda_gan multiplies G's GAN(D) and GAN(D_patch) terms and leaves the L1s alone."""
    cond, real = torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.25)
    pred, fake = torch.full((1, 1, 2, 2), 0.3), torch.zeros(1, 3, 8, 8)
    one = losses.g_fake_terms(pred, pred, fake, real, cond, tiny_config())
    five = losses.g_fake_terms(pred, pred, fake, real, cond, tiny_config(lambda_gan=5.0))
    for name in ("G_GAN_D1", "G_GAN_patch"):
        assert one[name] > 0
        torch.testing.assert_close(five[name], 5 * one[name])
    assert five["G_L1"] == one["G_L1"] > 0


def test_presets_fill_only_what_the_user_did_not_set():
    cfg = apply_preset(TrainConfig(preset="expressive", lambda_order=3.0), {"lambda_order"})
    assert cfg.blend and cfg.ema > 0 and cfg.lambda_region > 0 and cfg.lambda_order == 3.0
    paper = apply_preset(TrainConfig())
    assert not paper.blend and paper.ema == 0 and paper.lambda_region == 0
    cli = from_args(
        TrainConfig,
        build_parser(TrainConfig, "t", ""),
        ["--dataroot", "d", "--preset", "expressive", "--ema=0.5"],
    )
    assert (
        cli.ema == 0.5 and cli.blend and cli.lambda_region == PRESETS["expressive"]["lambda_region"]
    )
    assert cfg.decay_fraction == PRESETS["expressive"]["decay_fraction"] > 0
    own_schedule = apply_preset(TrainConfig(preset="expressive", niter=50), {"niter"})
    assert own_schedule.decay_fraction == 0 and own_schedule.blend  # the user's epochs win
    with pytest.raises(AffineGANError, match="--preset 'vivid'"):
        apply_preset(TrainConfig(preset="vivid"))


def test_preset_adds_the_keep_loss_below_128_px_only():
    small = apply_preset(TrainConfig(preset="expressive", fineSize=64))
    assert small.blend and small.alpha_grad and small.lr == 4e-4 and small.lambda_keep == 30
    large = apply_preset(TrainConfig(preset="expressive", fineSize=128))
    assert large.blend and large.alpha_grad and large.lr == 4e-4 and large.lambda_keep == 0
    off = apply_preset(
        TrainConfig(preset="expressive", fineSize=64, lambda_keep=0.0), {"lambda_keep"}
    )
    assert off.lambda_keep == 0 and off.alpha_grad  # the user's weight wins, the rest stays
    mine = apply_preset(TrainConfig(preset="expressive", fineSize=256, lr=1e-4), {"lr"})
    assert mine.alpha_grad and mine.lr == 1e-4  # the user's rate wins
    assert not apply_preset(TrainConfig(fineSize=256)).alpha_grad  # no preset: the paper's
    parser = build_parser(TrainConfig, "t", "")
    argv = ["--dataroot", "d", "--fineSize", "128", "--preset", "expressive"]
    assert from_args(TrainConfig, parser, argv).lr == 4e-4
    assert from_args(TrainConfig, parser, [*argv, "--lr=1e-4"]).lr == 1e-4


def test_budget_schedule_decays_over_the_last_share_of_the_epochs_the_budget_buys():
    """6000 steps of 24 clips are 250 epochs: 125 at the full rate, then 125 decaying to 1/126;
    no budget, however short, ends on an epoch at rate 0."""

    def factors(max_steps: int, per_epoch: int, fraction: float, first: int = 1) -> list[float]:
        cfg = budget_schedule(
            TrainConfig(max_steps=max_steps, decay_fraction=fraction, epoch_count=first),
            per_epoch,
        )
        epochs = range(first, first + -(-max_steps // per_epoch))
        return [round(model.lr_factor(e, cfg), 4) for e in epochs]

    full = factors(6000, 24, 0.5)
    assert full[:125] == [1.0] * 125 and full[125:] == [
        round(k / 126, 4) for k in range(125, 0, -1)
    ]
    assert factors(100, 1000, 0.5) == [1.0]  # one epoch: all of it at the full rate
    assert factors(2000, 1000, 0.5) == [1.0, 0.5]
    assert factors(3000, 1000, 0.5) == [1.0, 0.6667, 0.3333]
    assert factors(3000, 1000, 0.5, first=1000) == [1.0, 0.6667, 0.3333]  # --epoch_count
    cfg = TrainConfig(max_steps=6000, decay_fraction=0.5)
    assert budget_schedule(replace(cfg, max_steps=0), 24) == replace(cfg, max_steps=0)
    assert budget_schedule(replace(cfg, decay_fraction=0.0), 24).niter == TrainConfig().niter


def test_lambda_position_pulls_alpha_towards_the_targets_place_in_the_clip():
    """The position loss is the mean |alpha - position|, and only the encoders receive it."""
    torch.manual_seed(0)
    cfg = tiny_config(lambda_position=7.0)
    nets = build_nets(cfg)
    batch = random_batch()
    batch["B_position"] = torch.tensor([[0.25, 0.5, 1.0]])
    alpha = encode_batch(nets.G, batch["A"], batch["B"]).alpha
    losses = train_step(nets, build_optimizers(nets, cfg), batch, cfg)
    expected = (alpha - batch["B_position"]).abs().mean() * 7.0
    torch.testing.assert_close(losses["G_position"], expected.detach())


def test_shifted_moves_each_image_by_at_most_the_fraction():
    """A one-pixel bright column moves sideways by up to fraction x width, its mass kept."""
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 8, 32)
    x[..., 16] = 1.0
    moved = model.shifted(x, 0.05)
    cols = torch.arange(32, dtype=torch.float32)
    centre = (moved.sum(2) * cols).sum(-1).squeeze(1) / moved.sum((1, 2, 3))
    offsets = centre - 16.0
    assert offsets.abs().max() <= 0.05 * 32 + 1e-4
    assert offsets.std() > 0.3  # each image its own shift
    torch.testing.assert_close(moved.sum((1, 2, 3)), x.sum((1, 2, 3)))
    torch.testing.assert_close(model.shifted(x, 0.0), x)


@pytest.mark.parametrize("joint,norm", [(True, "instance"), (False, "instance"), (True, "batch")])
def test_lambda_still_is_the_alpha_of_the_shifted_neutral_face(monkeypatch, joint, norm):
    """The targets' alphas are unchanged by the extra rows (BatchNorm too); an unmoved neutral
    face has alpha 0; the step reports lambda_still x the mean alpha of the moved faces, on
    either decode path."""
    if not joint:
        monkeypatch.setattr(model, "JOINT_DECODE_MAX", 0)
    torch.manual_seed(0)
    cfg = tiny_config(lambda_still=3.0, still_shift=0.1, norm=norm)
    nets = build_nets(cfg)
    batch = random_batch(n=2)  # train mode (batch statistics); tiny_config has no noise
    n, k = batch["B"].shape[:2]
    plain = encode_batch(nets.G, batch["A"], batch["B"])
    with_still = encode_batch(nets.G, batch["A"], batch["B"], still=batch["A"])
    torch.testing.assert_close(with_still.alpha, plain.alpha)
    assert with_still.still is not None and with_still.still.shape == (n,)
    assert with_still.still.abs().max() < 1e-5
    assert len(with_still.enc_b.bottom_base) == n * k
    torch.manual_seed(5)
    moved = model.shifted(batch["A"], 0.1)
    expected = encode_batch(nets.G, batch["A"], batch["B"], still=moved).still
    torch.manual_seed(5)
    losses = train_step(nets, build_optimizers(nets, cfg), batch, cfg)
    torch.testing.assert_close(losses["G_still"], expected.mean().detach() * 3.0)
    assert "G_still" not in train_step(nets, build_optimizers(nets, cfg), batch, tiny_config())


def test_alpha_grad_trains_the_encoders_through_the_alphas(monkeypatch):
    """--alpha_grad: the decoders' updates are the detached step's; the encoders' differ by the
    image losses' gradient through alpha, the same on both decode paths."""
    cfg = tiny_config(blend=True, lambda_region=10.0)
    torch.manual_seed(0)
    nets = build_nets(cfg)
    for _, net in nets.items():
        net.double()
    batch = {k: v.double() for k, v in random_batch().items()}
    start = {n: p.detach().clone() for n, p in nets.G.named_parameters()}

    def update(alpha_grad: bool, joint: bool) -> dict[str, torch.Tensor]:
        monkeypatch.setattr(model, "JOINT_DECODE_MAX", 2**40 if joint else 0)
        run = copy.deepcopy(nets)
        torch.manual_seed(1)
        train_step(run, sgd(run), batch, replace(cfg, alpha_grad=alpha_grad))
        return {n: start[n] - p.detach() for n, p in run.G.named_parameters()}

    detached, joint, apart = update(False, True), update(True, True), update(True, False)
    moved = []
    for name, g in detached.items():
        torch.testing.assert_close(joint[name], apart[name], rtol=1e-9, atol=1e-12)
        if "down" in name:  # the encoders (base and residual streams) make the alphas
            if name.endswith("weight"):  # (a bias before InstanceNorm has no gradient at all)
                moved.append(not torch.allclose(joint[name], g, rtol=1e-6, atol=1e-12))
        else:
            torch.testing.assert_close(joint[name], g, rtol=1e-9, atol=1e-12)
    assert len(moved) == 12 and all(moved), "each encoder conv gets the alphas' image gradient"
