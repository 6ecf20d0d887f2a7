"""Each op's fast path against its reference twin, and second-order gradients."""

import itertools

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from adagan.ops import (
    bias_act,
    bias_act_ref,
    conv2d_resample,
    conv2d_resample_ref,
    downsample2d,
    filter2d,
    modulated_conv2d,
    modulated_conv2d_ref,
    setup_filter,
    upfirdn2d,
    upfirdn2d_ref,
    upsample2d,
)

F4 = [1, 3, 3, 1]


def _rand(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


@pytest.mark.parametrize(
    "up,down,padding,separable,flip",
    [(1, 1, 0, False, False), (2, 1, [2, 1, 2, 1], False, False), (1, 2, [1, 1, 1, 1], True, False),
     (2, 1, [2, 1, 2, 1], True, True), (1, 1, [-1, 2, 0, -1], False, False),
     ((2, 1), (1, 2), [1, 0, 2, 1], True, False)],
)
def test_upfirdn2d_matches_ref(up, down, padding, separable, flip):
    x = _rand(2, 3, 8, 7)
    f = setup_filter(F4, separable=separable).double()
    if not separable:
        f = f * torch.linspace(0.5, 1.5, 16, dtype=torch.float64).reshape(4, 4)  # asymmetric: flips matter
    a = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=1.7)
    b = upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=1.7)
    assert a.shape == b.shape
    torch.testing.assert_close(a, b)


def test_resampling_sizes_and_dc_gain():
    f = setup_filter(F4)
    x = torch.ones(1, 2, 8, 8)
    assert upsample2d(x, f).shape == (1, 2, 16, 16)
    assert downsample2d(x, f).shape == (1, 2, 4, 4)
    assert filter2d(x, f).shape == (1, 2, 8, 8)
    # Interior of a constant image keeps its value (normalized filter, gain up^2 for zero insertion).
    torch.testing.assert_close(upsample2d(x, f)[..., 3:-3, 3:-3], torch.ones(1, 2, 10, 10))
    torch.testing.assert_close(downsample2d(x, f)[..., 1:-1, 1:-1], torch.ones(1, 2, 2, 2))


def test_setup_filter_normalizes_outer_product():
    f = setup_filter(F4)
    assert f.shape == (4, 4)
    torch.testing.assert_close(f.sum(), torch.tensor(1.0))
    torch.testing.assert_close(f, torch.outer(torch.tensor(F4.copy(), dtype=torch.float32),
                                              torch.tensor(F4.copy(), dtype=torch.float32)) / 64)


def test_upfirdn2d_second_order():
    x = _rand(1, 2, 5, 5).requires_grad_()
    f = setup_filter(F4).double()
    fn = lambda t: upsample2d(t, f)
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))
    fn = lambda t: downsample2d(t, setup_filter(F4, separable=True).double())
    assert gradcheck(fn, (x,)) and gradgradcheck(fn, (x,))


@pytest.mark.parametrize("act,clamp", [("linear", None), ("lrelu", None), ("lrelu", 0.5), ("relu", 1.0),
                                       ("tanh", None), ("sigmoid", None)])
def test_bias_act_matches_ref_and_grads(act, clamp):
    x = _rand(3, 4, 5, 5)
    b = _rand(4, seed=1)
    torch.testing.assert_close(bias_act(x, b, act=act, clamp=clamp), bias_act_ref(x, b, act=act, clamp=clamp))
    # Keep away from the kinks for finite differences.
    x = (x + 0.05 * torch.sign(x)).requires_grad_()
    b = b.requires_grad_()
    fn = lambda t, c: bias_act(t, c, act=act, clamp=None if clamp is None else 50.0)
    assert gradcheck(fn, (x, b)) and gradgradcheck(fn, (x, b))


def test_bias_act_lrelu_gain_and_clamp():
    x = torch.tensor([-1.0, 0.0, 2.0, 1000.0])
    y = bias_act(x, act="lrelu", clamp=256)
    torch.testing.assert_close(y, torch.tensor([-0.2 * 2**0.5, 0.0, 2 * 2**0.5, 256.0]))
    with pytest.raises(ValueError, match="unknown activation"):
        bias_act(x, act="swish-ish")


CONV_CASES = list(itertools.product([(1, 1, 1), (2, 1, 1), (1, 2, 1), (1, 2, 0)], [3, 1], [True, False]))


@pytest.mark.parametrize("resample,k,flip_weight", CONV_CASES)
def test_conv2d_resample_matches_ref(resample, k, flip_weight):
    up, down, pad_unit = resample
    x = _rand(2, 3, 8, 8)
    w = _rand(5, 3, k, k, seed=1)
    f = setup_filter(F4).double() if (up > 1 or down > 1) else None
    padding = (k // 2) * pad_unit
    a = conv2d_resample(x, w, f, up=up, down=down, padding=padding, flip_weight=flip_weight)
    b = conv2d_resample_ref(x, w, f, up=up, down=down, padding=padding, flip_weight=flip_weight)
    assert a.shape == b.shape
    torch.testing.assert_close(a, b)
    if up == 2 and padding == k // 2:
        assert a.shape[-1] == 16
    if down == 2 and padding == k // 2:
        assert a.shape[-1] == 4


@pytest.mark.parametrize("up,demodulate,with_noise", [(1, True, True), (2, True, False), (1, False, False),
                                                     (2, False, True)])
def test_modulated_conv2d_fused_equals_nonfused_equals_ref(up, demodulate, with_noise):
    x = _rand(3, 4, 8, 8)
    w = _rand(6, 4, 3, 3, seed=1)
    s = _rand(3, 4, seed=2) + 1
    H = 8 * up
    noise = _rand(3, 1, H, H, seed=3) if with_noise else None
    f = setup_filter(F4).double()
    kw = dict(up=up, padding=1, resample_filter=f, demodulate=demodulate, flip_weight=(up == 1), noise=noise)
    fused = modulated_conv2d(x, w, s, fused_modconv=True, **kw)
    nonfused = modulated_conv2d(x, w, s, fused_modconv=False, **kw)
    ref = modulated_conv2d_ref(x, w, s, **kw)
    assert fused.shape == (3, 6, H, H)
    torch.testing.assert_close(fused, nonfused)
    torch.testing.assert_close(fused, ref)


def test_modulated_conv2d_demodulation_normalizes_unit_input():
    # With demodulation, unit-variance iid input gives unit-variance output regardless of style scale.
    x = torch.randn(2, 64, 16, 16, generator=torch.Generator().manual_seed(0))
    w = torch.randn(32, 64, 3, 3, generator=torch.Generator().manual_seed(1))
    s = torch.full((2, 64), 7.0)
    y = modulated_conv2d(x, w, s, padding=1)
    assert abs(y[..., 1:-1, 1:-1].std().item() - 1) < 0.05


@pytest.mark.parametrize("fused", [True, False])
def test_modulated_conv2d_second_order(fused):
    x = _rand(2, 2, 4, 4).requires_grad_()
    w = _rand(3, 2, 3, 3, seed=1).requires_grad_()
    s = (_rand(2, 2, seed=2) + 2).requires_grad_()
    f = setup_filter(F4).double()
    fn = lambda a, b, c: modulated_conv2d(a, b, c, up=2, padding=1, resample_filter=f, flip_weight=False,
                                          fused_modconv=fused)
    assert gradcheck(fn, (x, w, s))
    assert gradgradcheck(fn, (x, w, s))
