"""Loss phases, lazy regularization, EMA and Freeze-D (SPEC §5)."""

import pytest
import torch

from adagan.config import DiscriminatorConfig, GeneratorConfig, LossConfig
from adagan.networks import Discriminator, Generator
from adagan.training import stats
from adagan.training.loop import _make_optimizer, frozen_d_params, iteration_seed
from adagan.training.loss import StyleGAN2Loss


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


@pytest.mark.parametrize("phase", ["Gmain", "Greg", "Dmain", "Dreg"])
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
