"""Loss phases, lazy regularization, EMA and Freeze-D (paper App. D, StyleGAN2 App. B; docs/training.md)."""

import pytest
import torch

from adagan.config import DiscriminatorConfig, GeneratorConfig, LossConfig, OptimConfig
from adagan.errors import ConfigError
from adagan.networks import Discriminator, Generator
from adagan.presets import PRESETS, resolve
from adagan.training import stats
from adagan.training.loss import LeCam, StyleGAN2Loss
from adagan.training.trainer import _make_optimizer, build_phases, draw_gen_c, frozen_d_params, iteration_seed


def _nets(c_dim=0):
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, c_dim=c_dim, img_resolution=16, channel_base=128,
                                  channel_max=8, map_layers=2)).train()
    D = Discriminator(DiscriminatorConfig(c_dim=c_dim, img_resolution=16, channel_base=128, channel_max=8,
                                          cmap_dim=8, map_layers=2, mbstd_group_size=2)).train()
    return G, D


def _run(phase, G, D, pipe=None, cfg=LossConfig(r1_gamma=1.0), c_dim=0):
    loss = StyleGAN2Loss(G, D, pipe, cfg)
    for net in (G, D):
        net.requires_grad_(False)
        net.zero_grad(set_to_none=True)
    (G if phase.startswith("G") else D).requires_grad_(True)
    c = torch.eye(c_dim)[torch.arange(4) % c_dim] if c_dim else None
    loss.accumulate_gradients(phase, torch.randn(4, 3, 16, 16), c, torch.randn(4, 8), c, gain=1)
    return loss


@pytest.mark.parametrize("phase", ["Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth"])
def test_each_phase_trains_only_its_network(phase):
    G, D = _nets()
    _run(phase, G, D)
    trained, other = (G, D) if phase.startswith("G") else (D, G)
    grads = [p.grad for p in trained.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None for p in other.parameters())


def test_statistics_are_reported_by_name():
    G, D = _nets()
    col = stats.Collector()
    try:
        for phase in ("Gmain", "Greg", "Dmain", "Dreg"):
            _run(phase, G, D)
        names = set(col.drain())
    finally:
        col.close()
    assert {"Loss/G/loss", "Loss/D/loss", "Loss/scores/real", "Loss/scores/fake", "Loss/signs/real",
            "Loss/r1_penalty", "Loss/pl_penalty"} <= names


def test_signs_real_reach_subscribers_from_dmain_and_dreg():
    G, D = _nets()
    seen = []
    unsub = stats.subscribe("Loss/signs/real", lambda v: seen.append(v.numel()))
    try:
        _run("Dmain", G, D)
        _run("Dreg", G, D)
        _run("Gmain", G, D)
    finally:
        unsub()
    assert seen == [4, 4]


def test_r1_matches_manual_gradient_through_augment():
    G, D = _nets()
    pipe = lambda x: x.flip(3) * 0.5  # any differentiable augmentation
    real = torch.randn(4, 3, 16, 16)
    loss = StyleGAN2Loss(G, D, pipe, LossConfig(r1_gamma=2.0))
    D.requires_grad_(True)
    col = stats.Collector()
    try:
        loss.accumulate_gradients("Dreg", real, None, torch.randn(4, 8), None, gain=1)
        r1 = col.drain()["Loss/r1_penalty"]["mean"]
    finally:
        col.close()
    x = real.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(D(pipe(x)).sum(), x)
    assert r1 == pytest.approx(g.square().sum([1, 2, 3]).mean().item(), rel=1e-5)


def test_path_length_mean_tracks_with_decay():
    G, D = _nets()
    loss = _run("Greg", G, D, cfg=LossConfig(pl_decay=0.5, style_mixing_prob=0))
    assert loss.pl_mean.item() > 0
    first = loss.pl_mean.item()
    loss.accumulate_gradients("Greg", None, None, torch.randn(4, 8), None, gain=1)
    assert loss.pl_mean.item() != first


def test_conditional_phases():
    G, D = _nets(c_dim=3)
    for phase in ("Gmain", "Dmain", "Dreg"):
        _run(phase, G, D, c_dim=3)
    assert G.mapping.embed.weight.grad is None  # last phase trained D
    assert D.mapping.embed.weight.grad is not None


def test_lazy_regularization_adam_correction():
    G, _ = _nets()
    opt = _make_optimizer(G, 0.002, (0.0, 0.99), 1e-8, 16)
    g = opt.param_groups[0]
    assert g["lr"] == pytest.approx(0.002 * 16 / 17)
    assert g["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    assert g["betas"][0] == 0.0


def test_freeze_d_counts_layers_from_the_top():
    _, D = _nets()
    names = D.layer_names()
    assert names[:4] == ["b16.fromrgb", "b16.conv0", "b16.conv1", "b16.skip"]
    frozen = frozen_d_params(D, 2)
    frozen_names = {n for n, p in D.named_parameters() if id(p) in frozen}
    assert frozen_names == {"b16.fromrgb.weight", "b16.fromrgb.bias", "b16.conv0.weight", "b16.conv0.bias"}


def test_iteration_seed_depends_on_position():
    assert iteration_seed(0, 0, 5) == iteration_seed(0, 0, 5)
    assert len({iteration_seed(s, r, k) for s in range(2) for r in range(2) for k in range(3)}) == 12


def test_collector_reduce_sums_named_stats_and_keeps_local_ones():
    col = stats.Collector()
    try:
        stats.report("Loss/G/loss", torch.tensor([1.0, 3.0]))
        stats.report("Timing/Gmain_ms", 5.0)
        col.reduce(lambda t: t.mul_(2), ["Loss/G/loss", "Loss/D/loss"])  # as if 2 identical ranks
        out = col.drain()
    finally:
        col.close()
    assert out["Loss/G/loss"]["num"] == 4 and out["Loss/G/loss"]["mean"] == pytest.approx(2.0)
    assert out["Timing/Gmain_ms"] == {"num": 1, "mean": 5.0, "std": 0.0}
    assert "Loss/D/loss" not in out


class _LinearG(torch.nn.Module):
    """img = s * A @ ws (flattened): the path length of sample n is exactly s * ||A^T noise_n|| / sqrt(num_ws)."""

    def __init__(self, num_ws=3, w_dim=4, res=4):
        super().__init__()
        self.num_ws, self.res = num_ws, res
        self.s = torch.nn.Parameter(torch.tensor(1.5))
        self.m = torch.nn.Parameter(torch.ones(w_dim))  # puts ws into the graph, as the mapping's weights do
        gen = torch.Generator().manual_seed(1)
        self.register_buffer("A", torch.randn(3 * res * res, num_ws * w_dim, generator=gen))
        self.mapping = lambda z, c, update_emas=False: (z * self.m)[:, None, :].repeat(1, self.num_ws, 1)
        self.synthesis = lambda ws: (self.s * ws.flatten(1) @ self.A.T).reshape(-1, 3, self.res, self.res)


def test_path_length_gradient_flows_through_the_batch_mean():
    # Penalty (L_n - a)^2 with L_n = s*Q_n and a = (1-d)*m0 + d*mean(L): dLoss/ds keeps the -d*mean(Q) term
    # of da/ds (official loss.py; the target's batch mean is not detached).
    G = _LinearG()
    d, weight, gain, N = 0.5, 2.0, 4.0, 4
    cfg = LossConfig(pl_weight=weight, pl_decay=d, pl_batch_shrink=1, style_mixing_prob=0)
    loss = StyleGAN2Loss(G, None, None, cfg)
    loss.pl_mean.fill_(0.3)
    z = torch.randn(N, 4)
    torch.manual_seed(7)
    loss.accumulate_gradients("Greg", None, None, z, None, gain=gain)
    torch.manual_seed(7)
    noise = torch.randn(N, 3, 4, 4).double() / 4  # the same draw: pl_noise / sqrt(H*W)
    A, s, m0 = G.A.double(), 1.5, 0.3
    Q = (noise.flatten(1) @ A).square().sum(1).div(G.num_ws).sqrt()  # [N]
    a = (1 - d) * m0 + d * s * Q.mean()
    expected = (weight * gain * 2 * (s * Q - a) * (Q - d * Q.mean())).mean().item()
    detached = (weight * gain * 2 * (s * Q - a) * Q).mean().item()
    assert G.s.grad.item() == pytest.approx(expected, rel=1e-5)
    assert abs(expected - detached) > 1e-3 * abs(expected)  # the example tells the two apart
    assert loss.pl_mean.item() == pytest.approx(a.item(), rel=1e-6)
    assert not loss.pl_mean.requires_grad


@pytest.mark.parametrize("phase,updates", [("Gmain", [4]), ("Greg", [2]), ("Gboth", [4, 2]), ("Dmain", [4]),
                                           ("Dreg", []), ("Dboth", [4])])
def test_w_avg_follows_every_main_mapping_call(phase, updates):
    # The official mapping updates w_avg on every training call (Gmain, Greg, the fakes of Dmain), with the
    # mean of the w's of the main latents only (not the style-mixing second z). `updates`: batch of each call.
    G, D = _nets()
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn(8))
    start = G.mapping.w_avg.clone()
    z = torch.randn(4, 8)
    loss = StyleGAN2Loss(G, D, None, LossConfig(r1_gamma=1.0, style_mixing_prob=1.0, pl_batch_shrink=2))
    (G if phase.startswith("G") else D).requires_grad_(True)
    loss.accumulate_gradients(phase, torch.randn(4, 3, 16, 16), None, z, None, gain=1)
    expected = start.clone()
    with torch.no_grad():
        for n in updates:
            expected = G.mapping(z[:n], None)[:, 0].mean(0).lerp(expected, G.mapping.w_avg_beta)
    assert torch.allclose(G.mapping.w_avg, expected, atol=1e-6, rtol=0)
    assert torch.equal(G.mapping.w_avg, start) == (not updates)


def _grads(net):
    return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("net", ["G", "D"])
def test_both_phase_is_main_plus_reg_in_one_call(net):
    G, D = _nets()
    cfg = LossConfig(r1_gamma=1.0, style_mixing_prob=0.9)
    real, z = torch.randn(4, 3, 16, 16), torch.randn(4, 8)
    module = G if net == "G" else D
    module.requires_grad_(True)
    results = []
    for phases in ([f"{net}main", f"{net}reg"], [f"{net}both"]):
        module.zero_grad(set_to_none=True)
        loss = StyleGAN2Loss(G, D, None, cfg)
        seen = []
        unsub = stats.subscribe("Loss/signs/real", lambda v, seen=seen: seen.append(v.numel()))
        torch.manual_seed(3)  # the same draws in the same order (noise, mixing, pl_noise)
        try:
            for phase in phases:
                loss.accumulate_gradients(phase, real, None, z, None, gain=1)
        finally:
            unsub()
        results.append((_grads(module), seen, loss.pl_mean.item()))
    (sep, sep_seen, sep_pl), (both, both_seen, both_pl) = results
    assert sep.keys() == both.keys() and len(both) == len(list(module.parameters()))
    for k in sep:
        assert torch.allclose(sep[k], both[k], rtol=1e-5, atol=1e-7), k
    assert sep_pl == both_pl
    # Dboth scores the reals once (official): the ADA statistic counts each real image once per iteration.
    assert (sep_seen, both_seen) == (([4, 4], [4]) if net == "D" else ([], []))


def test_both_phases_skip_a_zero_weight_regularizer():
    G, D = _nets()
    col = stats.Collector()
    try:
        for phase in ("Gboth", "Dboth"):
            _run(phase, G, D, cfg=LossConfig(r1_gamma=0, pl_weight=0))
        names = set(col.drain())
    finally:
        col.close()
    assert {"Loss/G/loss", "Loss/D/loss"} <= names
    assert not names & {"Loss/r1_penalty", "Loss/pl_penalty", "Loss/G/reg", "Loss/D/reg"}


def _adam(phase):
    g = phase.opt.param_groups[0]
    return g["lr"], g["betas"][1]


def test_lazy_phases_and_adam_correction():
    G, D = _nets()
    phases = build_phases(G, D, LossConfig(), OptimConfig(lr_g=0.002, lr_d=0.003))
    assert [(p.name, p.interval) for p in phases] == [("Gmain", 1), ("Greg", 4), ("Dmain", 1), ("Dreg", 16)]
    assert phases[0].opt is phases[1].opt and phases[2].opt is phases[3].opt
    assert _adam(phases[0]) == pytest.approx((0.002 * 4 / 5, 0.99 ** (4 / 5)))
    assert _adam(phases[2]) == pytest.approx((0.003 * 16 / 17, 0.99 ** (16 / 17)))


@pytest.mark.parametrize("name", [n for n in PRESETS if (PRESETS[n] is None or PRESETS[n].pl_weight == 0)])
def test_g_adam_is_corrected_for_interval_4_even_without_path_length(name):
    # Official training_loop.py always builds G's Adam for G_reg_interval 4 (cifar: lr 0.0025 -> 0.002).
    cfg = resolve(name, 32)
    G, D = _nets()
    phases = build_phases(G, D, cfg.loss, cfg.optim)
    assert _adam(phases[0]) == pytest.approx((cfg.optim.lr_g * 4 / 5, cfg.optim.beta2 ** (4 / 5)))
    if cfg.loss.pl_weight == 0:
        assert [p.name for p in phases] == ["Gmain", "Dmain", "Dreg"]  # nothing to regularize: no Greg


@pytest.mark.parametrize("interval", [None, 0])
def test_non_lazy_regularization_runs_combined_phases_every_step(interval):
    G, D = _nets()
    lcfg = LossConfig(pl_interval=interval, r1_interval=interval)
    phases = build_phases(G, D, lcfg, OptimConfig(lr_g=0.002, lr_d=0.002))
    assert [(p.name, p.interval) for p in phases] == [("Gboth", 1), ("Dboth", 1)]
    assert _adam(phases[0]) == _adam(phases[1]) == (0.002, 0.99)  # no lazy scaling
    mixed = build_phases(G, D, LossConfig(pl_interval=4, r1_interval=interval), OptimConfig())
    assert [p.name for p in mixed] == ["Gmain", "Greg", "Dboth"]


def test_negative_reg_interval_is_an_error():
    G, D = _nets()
    with pytest.raises(ConfigError, match="r1_interval must be"):
        build_phases(G, D, LossConfig(r1_interval=-1), OptimConfig())


def test_fake_labels_follow_the_dataset_not_the_batch():
    labels = torch.eye(3)[torch.tensor([0] * 90 + [1] * 9 + [2])]  # a 90/9/1 label distribution
    torch.manual_seed(0)
    c = draw_gen_c(labels, 20000)
    assert c.shape == (20000, 3) and set(c.sum(1).tolist()) == {1.0}
    freq = c.mean(0)
    assert freq.tolist() == pytest.approx([0.9, 0.09, 0.01], abs=0.01)
    torch.manual_seed(0)
    assert torch.equal(draw_gen_c(labels, 20000), c)  # reproducible from the iteration seed


# ---- LeCam (Tseng et al. 2021) ----------------------------------------------------------------------

def test_lecam_averages_penalty_and_gradient_by_hand():
    lecam = LeCam(decay=0.9)
    # Step 1: batch means 2 (reals) and -2 (fakes); biased = 0.1 * mean, debiased by 1 - 0.9 = 0.1.
    lecam.update(torch.tensor([[1.0], [3.0]]), torch.tensor([[-1.0], [-3.0]]))
    torch.testing.assert_close(lecam.ema, torch.tensor([2.0, -2.0]))
    # Step 2: means 0 and -1; biased = (0.9 * 0.2 + 0.1 * 0, 0.9 * -0.2 + 0.1 * -1) = (0.18, -0.28), / (1 - 0.81).
    real = torch.tensor([[-2.0], [2.0]], requires_grad=True)
    fake = torch.tensor([[2.0], [-4.0]], requires_grad=True)
    lecam.update(real, fake)
    ema_real, ema_fake = 0.18 / 0.19, -0.28 / 0.19
    torch.testing.assert_close(lecam.ema, torch.tensor([ema_real, ema_fake]))
    assert lecam.steps == 2
    pen_real, pen_fake = lecam.penalty(real, fake)
    # relu(D(x) - ema_fake)^2: -2 + 28/19 < 0 -> 0; 2 + 28/19 = 66/19. relu(ema_real - D(G(z)))^2: 18/19 - 2 < 0 -> 0;
    # 18/19 + 4 = 94/19.
    torch.testing.assert_close(pen_real, torch.tensor([[0.0], [(66 / 19) ** 2]]))
    torch.testing.assert_close(pen_fake, torch.tensor([[0.0], [(94 / 19) ** 2]]))
    # d(lambda * R_LC)/d D(x_i) = lambda * 2 relu(D(x_i) - ema_fake) / N; the averages carry no gradient.
    (0.5 * (pen_real.mean() + pen_fake.mean())).backward()
    torch.testing.assert_close(real.grad, torch.tensor([[0.0], [0.5 * 66 / 19]]))
    torch.testing.assert_close(fake.grad, torch.tensor([[0.0], [-0.5 * 94 / 19]]))
    # The state round-trips (biased averages and the step count), as a resume needs.
    other = LeCam(decay=0.9)
    other.load_state_dict(lecam.state_dict())
    torch.testing.assert_close(other.ema, lecam.ema)
    assert other.steps == 2 and LeCam().ema.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("phase", ["Dmain", "Dboth"])
def test_lecam_adds_its_penalty_to_ds_main_loss(phase):
    import torch.nn.functional as F

    G, D = _nets()
    real, z = torch.randn(4, 3, 16, 16), torch.randn(4, 8)
    gamma = 1.0 if phase == "Dboth" else 0.0  # Dboth: R1 in the same backward
    cfg = LossConfig(r1_gamma=gamma, lecam=0.3, lecam_decay=0.9, style_mixing_prob=0.9)
    loss = StyleGAN2Loss(G, D, None, cfg)
    loss.lecam.update(torch.tensor([1.5]), torch.tensor([-0.5]))  # an earlier round
    before = loss.lecam.state_dict()["lecam_biased"].clone()
    D.requires_grad_(True)
    col = stats.Collector()
    torch.manual_seed(5)
    try:
        loss.accumulate_gradients(phase, real, None, z, None, gain=1)
        reported = col.drain()
    finally:
        col.close()
    got = _grads(D)
    # The same loss by hand: the same fakes (same seed, same draws), both means folded in, then the penalty.
    D.zero_grad(set_to_none=True)
    torch.manual_seed(5)
    with torch.no_grad():
        gen_img, _ = loss.run_G(z, None)
    real = real.clone().requires_grad_(True)
    gen_logits, real_logits = D(gen_img, None), D(real, None)
    (r1_grads,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    r1 = r1_grads.square().sum([1, 2, 3]).mean() * gamma / 2
    biased = before * 0.9 + 0.1 * torch.stack([real_logits.mean(), gen_logits.mean()]).detach()
    ema_real, ema_fake = biased / (1 - 0.9**2)
    r_lc = F.relu(real_logits - ema_fake).square().mean() + F.relu(ema_real - gen_logits).square().mean()
    (F.softplus(gen_logits).mean() + F.softplus(-real_logits).mean() + 0.3 * r_lc + r1).backward()
    want = _grads(D)
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(loss.lecam.ema, torch.stack([ema_real, ema_fake]).detach())
    assert reported["Loss/lecam/penalty"]["mean"] == pytest.approx(r_lc.item(), rel=1e-5)
    assert reported["Loss/lecam/ema_real"]["mean"] == pytest.approx(ema_real.item(), rel=1e-5)
    assert reported["Loss/D/loss"]["num"] == 4  # D/loss stays the GAN loss; LeCam is reported on its own


def test_lecam_off_changes_nothing_and_is_not_updated_by_other_phases():
    G, D = _nets()
    off = _run("Dmain", G, D)
    assert off.lecam is None and set(off.state_dict()) == {"pl_mean"}
    on = StyleGAN2Loss(G, D, None, LossConfig(lecam=0.1))
    assert set(on.state_dict()) == {"pl_mean", "lecam_biased", "lecam_steps"}
    D.requires_grad_(True)
    for phase in ("Dreg", "Gmain"):
        on.accumulate_gradients(phase, torch.randn(4, 3, 16, 16), None, torch.randn(4, 8), None, gain=1)
    assert on.lecam.steps == 0
    on.accumulate_gradients("Dmain", torch.randn(4, 3, 16, 16), None, torch.randn(4, 8), None, gain=1)
    assert on.lecam.steps == 1
