"""The objective and update order of docs/method.md, on tiny networks."""

import copy
from dataclasses import replace

import pytest
import torch
from reference import reference_train_step
from tiny import K, random_batch, tiny_config

from affinegan.config import PRESETS, TrainConfig, apply_preset
from affinegan.core import losses, step
from affinegan.core.build import Optimizers, build_nets, build_optimizers
from affinegan.core.intensity import encode_batch, infer_alpha
from affinegan.core.losses import expression_region, order_hinge, region_l1
from affinegan.core.schedule import budget_schedule, lr_factor
from affinegan.core.step import generator_forward, train_step
from affinegan.errors import AffineGANError
from affinegan.options import build_parser, from_args


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
        monkeypatch.setattr(step, "JOINT_DECODE_MAX", 0)
    cfg = tiny_config(lsgan=lsgan, blend=blend)
    assert step.decode_jointly(torch.zeros(1, K, 3, 64, 64), cfg) is joint
    assert not step.decode_jointly(torch.zeros(1, K, 3, 64, 64), tiny_config(norm="batch"))
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


ALPHA_TERMS = {  # option -> (its term's name, the term by hand from the alphas and the batch)
    "lambda_order": ("G_order", lambda a, b: order_hinge(a, b["B_index"], 0.05)),
    "lambda_position": ("G_position", lambda a, b: (a - b["B_position"]).abs().mean()),
}


@pytest.mark.parametrize("option", sorted(ALPHA_TERMS))
def test_an_alpha_term_adds_its_gradient_to_the_generator_only(option):
    """With --lambda_order (or --lambda_position), G's gradient is the original's plus lambda *
    d(term)/d(G), the term computed by hand from the inferred alphas; no discriminator moves."""
    name, by_hand = ALPHA_TERMS[option]
    cfg = tiny_config()
    torch.manual_seed(0)
    nets = build_nets(cfg)
    for _, net in nets.items():
        net.double()
    batch = {k: v.double() for k, v in random_batch().items()}
    batch["B_index"] = torch.tensor([[3, 1, 2]])
    batch["B_position"] = torch.tensor([[1.0, 1 / 3, 2 / 3]], dtype=torch.double)
    runs = {}
    for weight in (0.0, 10.0):
        copy_nets = copy.deepcopy(nets)
        torch.manual_seed(1)
        cfg_w = tiny_config(**{option: weight}, order_margin=0.05)
        losses = train_step(copy_nets, sgd(copy_nets), batch, cfg_w)
        runs[weight] = (copy_nets, losses)
    term = by_hand(encode_batch(nets.G, batch["A"], batch["B"]).alpha, batch)
    assert term.item() > 0 and name not in runs[0.0][1]
    torch.testing.assert_close(runs[10.0][1][name], term.detach() * 10)
    grads = torch.autograd.grad(term * 10, list(nets.G.parameters()), allow_unused=True)
    for p0, p1, g in zip(
        runs[0.0][0].G.parameters(), runs[10.0][0].G.parameters(), grads, strict=True
    ):
        extra = p0 - p1  # lr-1 SGD: the change in the update is the extra gradient
        torch.testing.assert_close(extra, torch.zeros_like(p0) if g is None else g)
    for net in ("D", "D_alpha", "D_patch"):
        for p0, p1 in zip(
            getattr(runs[0.0][0], net).parameters(),
            getattr(runs[10.0][0], net).parameters(),
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
    for i in range(3):
        for (_, net), (_, other) in zip(nets.items(), plain_nets.items(), strict=True):
            for p, q in zip(net.parameters(), other.parameters(), strict=True):
                p.grad = torch.randn_like(p, generator=torch.Generator().manual_seed(i))
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
    argv = ["--dataroot", "d", "--fineSize", "128", "--netG", "unet_128", "--preset", "expressive"]
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
        return [round(lr_factor(e, cfg), 4) for e in epochs]

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
        monkeypatch.setattr(step, "JOINT_DECODE_MAX", 2**40 if joint else 0)
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
