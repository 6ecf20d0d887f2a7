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
