"""DiffAugment: each transform on hand-computed cases, the gate p, draw ranges, gradients."""

import pytest
import torch

from adagan.augment.diffaug import DiffAugmentPipe, parse_policy
from adagan.errors import ConfigError


def draws(n, **kw):
    d = {"brightness": torch.full([n], 0.5), "saturation": torch.full([n], 0.5), "contrast": torch.full([n], 0.5),
         "shift": torch.zeros([n, 2], dtype=torch.long), "centre": torch.zeros([n, 2], dtype=torch.long)}
    d.update({f"gate_{g}": torch.ones([n], dtype=torch.bool) for g in ("color", "translation", "cutout")})
    d.update(kw)
    return d


def test_color_by_hand():
    # One 1x2 RGB image: pixels a = (0.2, 0.4, 0.6) and b = (-0.2, 0.0, 0.1).
    x = torch.tensor([[[[0.2, -0.2]], [[0.4, 0.0]], [[0.6, 0.1]]]])
    d = draws(1, brightness=torch.tensor([0.75]), saturation=torch.tensor([0.25]), contrast=torch.tensor([1.0]))
    y = DiffAugmentPipe("color")(x, d)
    # brightness + (0.75 - 0.5) = +0.25: a = (.45, .65, .85), b = (.05, .25, .35)
    # saturation x (0.25 * 2) = 0.5 about each pixel's channel mean (.65 and .2167):
    #   a = (.55, .65, .75), b = (.1333, .2333, .2833)
    # contrast x (1.0 + 0.5) = 1.5 about the image mean (.4333): a = (.6167, .7667, .9167) ...
    a = torch.tensor([0.55, 0.65, 0.75])
    b = torch.tensor([0.05, 0.25, 0.35]).sub(0.65 / 3).mul(0.5).add(0.65 / 3)
    m = (a.sum() + b.sum()) / 6
    expect = torch.stack([(a - m) * 1.5 + m, (b - m) * 1.5 + m], 1)[:, None, :]  # [C, 1, 2]
    torch.testing.assert_close(y[0], expect)


def test_translation_and_cutout_by_hand():
    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4)
    # Translation by (+1, -1): output (i, j) = input (i + 1, j - 1), zero outside.
    y = DiffAugmentPipe("translation")(x, draws(1, shift=torch.tensor([[1, -1]])))
    expect = torch.tensor([[0, 5, 6, 7], [0, 9, 10, 11], [0, 13, 14, 15], [0, 0, 0, 0]], dtype=torch.float32)
    torch.testing.assert_close(y[0, 0], expect)
    # Cutout at 4x4: a 2x2 square (half the size) starting one before the centre (x=3, y=0), clipped.
    y = DiffAugmentPipe("cutout")(x, draws(1, centre=torch.tensor([[3, 0]])))
    keep = torch.ones(4, 4)
    keep[0, 2:4] = 0
    torch.testing.assert_close(y[0, 0], x[0, 0] * keep)


def test_gates_select_samples():
    x = torch.rand(3, 3, 8, 8) * 2 - 1
    d = draws(3, shift=torch.tensor([[2, 1]] * 3), gate_translation=torch.tensor([True, False, True]),
              gate_color=torch.zeros(3, dtype=torch.bool), gate_cutout=torch.zeros(3, dtype=torch.bool))
    y = DiffAugmentPipe()(x, d)
    assert torch.equal(y[1], x[1]) and not torch.equal(y[0], x[0])
    pipe = DiffAugmentPipe(p=0.0)
    assert torch.equal(pipe(x), x)  # p = 0: nothing drawn on


def test_draw_ranges_match_the_paper():
    pipe = DiffAugmentPipe()
    d = pipe._draw(torch.zeros(20000, 3, 32, 32))
    sh = d["shift"]
    assert sh.min() == -4 and sh.max() == 4  # round(32 / 8)
    # centre 0..32 for the even 16-px square: 33 positions, as the paper's code
    assert d["centre"].min() == 0 and d["centre"].max() == 32
    d = pipe._draw(torch.zeros(20000, 3, 30, 30))  # 15-px square (odd): 0..29
    assert d["centre"].max() == 29 and d["shift"].max() == 4
    assert all(bool(d[f"gate_{g}"].all()) for g in ("color", "translation", "cutout"))  # p = 1
    half = DiffAugmentPipe(p=0.5)._draw(torch.zeros(20000, 3, 8, 8))
    assert 0.48 < half["gate_color"].float().mean() < 0.52


def test_gradients_flow_to_the_input():
    torch.manual_seed(0)
    x = (torch.rand(4, 3, 8, 8, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    pipe = DiffAugmentPipe()
    d = pipe._draw(x)
    assert torch.autograd.gradcheck(lambda t: pipe(t, d), (x,))
    assert torch.autograd.gradgradcheck(lambda t: pipe(t, d), (x,))  # R1 goes through it
    pipe(x).square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_policy_parsing():
    assert parse_policy("color, cutout") == ("color", "cutout")
    with pytest.raises(ConfigError, match="unknown DiffAugment policy"):
        parse_policy("color,zoom")


def test_build_pipe_and_build_augment_select_diffaugment():
    from adagan.augment import build_augment, build_pipe
    from adagan.config import AugmentConfig

    pipe = build_pipe("diffaug")
    assert isinstance(pipe, DiffAugmentPipe) and pipe.policy == "color,translation,cutout" and float(pipe.p) == 0
    pipe, ctl = build_augment(AugmentConfig(mode="fixed", p=1.0, augpipe="diffaug"), batch=8, device="cpu")
    assert isinstance(pipe, DiffAugmentPipe) and float(pipe.p) == 1.0 and ctl.mode == "fixed"
    pipe, ctl = build_augment(AugmentConfig(mode="ada", augpipe="diffaug", ada_kimg=0.001), batch=8, device="cpu")
    ctl.accumulate(torch.ones(8))
    ctl.step()
    assert float(pipe.p) > 0  # the ADA controller moves DiffAugment's p like ADA's


def test_quantile_draws_for_the_preview():
    from adagan.augment.diffaug import quantile_draws

    x = torch.rand(1, 3, 32, 32) * 2 - 1
    pipe = DiffAugmentPipe()
    torch.testing.assert_close(pipe(x, quantile_draws(x, 0.5, "saturation")), x)  # median colour draw: identity
    assert torch.equal(quantile_draws(x, 0.0, "translation")["shift"], torch.tensor([[-4, -4]]))
    assert torch.equal(quantile_draws(x, 1.0, "translation")["shift"], torch.tensor([[4, 4]]))
    assert torch.equal(quantile_draws(x, 1.0, "cutout")["centre"], torch.tensor([[32, 32]]))
    d = quantile_draws(x, 0.9, "brightness")
    assert d["gate_color"].all() and not d["gate_cutout"].any()
    torch.testing.assert_close(pipe(x, d), x + 0.4)
    with pytest.raises(ConfigError, match="unknown DiffAugment transform"):
        quantile_draws(x, 0.5, "hue")


def test_r1_double_backward_through_diffaugment_in_the_loss():
    from adagan.config import DiscriminatorConfig, GeneratorConfig, LossConfig
    from adagan.networks import Discriminator, Generator
    from adagan.training.loss import StyleGAN2Loss

    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=8, map_layers=2))
    D = Discriminator(DiscriminatorConfig(img_resolution=16, channel_base=128, channel_max=8, mbstd_group_size=2))
    loss = StyleGAN2Loss(G, D, DiffAugmentPipe(p=1.0), LossConfig(r1_gamma=1.0))
    D.requires_grad_(True)
    loss.accumulate_gradients("Dreg", torch.rand(4, 3, 16, 16) * 2 - 1, None, torch.randn(4, 8), None, gain=1)
    grads = [p.grad for p in D.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and sum(g.abs().sum() for g in grads) > 0
