import math

import pytest
import torch

from adagan.augment import AUGPIPES, TRANSFORMS, AugmentPipe, build_pipe
from adagan.augment.pipeline import _Draws, filter_bands
from adagan.augment.resample import blit, resample, resample_filter, resample_ref
from adagan.errors import ConfigError
from adagan.ops import setup_filter


def images(n=4, c=3, res=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand([n, c, res, res], generator=g) * 2 - 1


def smooth(n=2, res=32):
    u = torch.arange(res, dtype=torch.float64) - (res - 1) / 2
    Y, X = torch.meshgrid(u, u, indexing="ij")
    img = torch.sin(0.3 * X + 0.1) * torch.cos(0.2 * Y) + 0.3 * torch.sin(0.15 * X + 0.25 * Y)
    return img[None, None].repeat(n, 3, 1, 1), X, Y


@pytest.mark.parametrize("augpipe", list(AUGPIPES))
@pytest.mark.parametrize("c", [1, 3, 4])
def test_p0_is_exact_identity(augpipe, c):
    x = images(c=c)
    pipe = build_pipe(augpipe)  # AugmentPipe, or DiffAugmentPipe for diffaug
    assert float(pipe.p) == 0
    assert torch.equal(pipe(x), x)


def test_xflip_and_rotate90_are_pixel_permutations():
    x = images(n=64)
    for name, allowed in [("xflip", lambda v: [v, v.flip(2)]),
                          ("rotate90", lambda v: [torch.rot90(v, k, dims=(1, 2)) for k in range(4)])]:
        pipe = AugmentPipe(None, **{name: 1})
        pipe.p.fill_(1)
        torch.manual_seed(1)
        y = pipe(x)
        seen = set()
        for i in range(len(x)):
            matches = [k for k, a in enumerate(allowed(x[i])) if torch.equal(y[i], a)]
            assert matches, f"{name}: sample {i} is not an exact permutation"
            seen.add(matches[0])
        assert len(seen) == len(allowed(x[0]))  # every variant occurs


def test_integer_translation_moves_pixels_exactly():
    x = images(n=2, res=32)
    pipe = AugmentPipe(None, xint=1, debug_percentile=1.0)  # t = +0.125 of the size = 4 px right and down
    pipe.p.fill_(1)
    y = pipe(x)
    assert torch.equal(y[:, :, 4:, 4:], x[:, :, :-4, :-4])
    assert torch.equal(y[:, :, :4, 4:], x[:, :, 1:5, :-4].flip(2))  # reflected at the border


def test_resampling_is_aligned_with_exact_blit_and_analytic_warps():
    f = setup_filter(resample_filter())
    img, X, Y = smooth()
    M = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    M[:, 0, 2], M[1, 1, 2] = 3, -2
    assert (resample(img, M, f) - blit(img, M))[..., 6:-6, 6:-6].abs().max() < 0.02
    # Half-pixel translation and a rotation against the analytic function.
    M = torch.eye(3, dtype=torch.float64)[None].clone()
    M[0, 0, 2], M[0, 1, 2] = 0.5, -0.25
    fn = lambda X, Y: torch.sin(0.3 * X + 0.1) * torch.cos(0.2 * Y) + 0.3 * torch.sin(0.15 * X + 0.25 * Y)  # noqa
    assert (resample(img[:1], M, f)[0, 0] - fn(X + 0.5, Y - 0.25))[6:-6, 6:-6].abs().max() < 0.01
    th = 0.3
    R = torch.tensor([[[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1]]],
                     dtype=torch.float64)
    Xi, Yi = math.cos(th) * X - math.sin(th) * Y, math.sin(th) * X + math.cos(th) * Y
    assert (resample(img[:1], R, f)[0, 0] - fn(Xi, Yi))[8:-8, 8:-8].abs().max() < 0.01


def _similarity(n, g, zoom=1.0):
    """n random inverse matrices: rotation, log-normal scale times `zoom`, shift of a few pixels."""
    th = torch.rand([n], generator=g, dtype=torch.float64) * 2 * math.pi
    s = torch.exp2(torch.randn([n], generator=g, dtype=torch.float64) * 0.3) * zoom
    M = torch.zeros([n, 3, 3], dtype=torch.float64)
    M[:, 0, 0], M[:, 0, 1], M[:, 1, 0], M[:, 1, 1] = s * th.cos(), -s * th.sin(), s * th.sin(), s * th.cos()
    M[:, :2, 2] = torch.randn([n, 2], generator=g, dtype=torch.float64) * 2
    M[:, 2, 2] = 1
    return M


@pytest.mark.parametrize("zoom", [1.0, 0.4, 3.0])
def test_resample_equals_padded_reference(zoom):
    """Moving positions by whole periods of the mirror extension == mirror-padding by the full margin;
    zoom 3 (inverse matrix, i.e. the image shrinks 3x) reads several periods of the extension."""
    f = setup_filter(resample_filter()).to(torch.float64)
    g = torch.Generator().manual_seed(0)
    x = torch.rand([6, 3, 16, 16], generator=g, dtype=torch.float64) * 2 - 1
    M = _similarity(6, g, zoom)
    assert (resample(x, M, f) - resample_ref(x, M, f)).abs().max() < 1e-10


@pytest.mark.parametrize("res", [1, 2, 5, 16, 17])
@pytest.mark.parametrize("zoom", [1.0, 0.4, 3.0])
def test_resample_conv_and_matmul_paths_agree(res, zoom):
    """The two implementations of the 2x up/down sampling (picked by size, RESAMPLE_MATMUL_MAX) are the same
    function, down to float64 rounding, for odd and tiny sizes and warps that read several periods."""
    f = setup_filter(resample_filter()).to(torch.float64)
    g = torch.Generator().manual_seed(res)
    x = torch.rand([4, 3, res, res], generator=g, dtype=torch.float64) * 2 - 1
    M = _similarity(4, g, zoom)
    mm, conv = resample(x, M, f, impl="matmul"), resample(x, M, f, impl="conv")
    assert (mm - conv).abs().max() < 1e-12
    if res > 1:
        assert (conv - resample_ref(x, M, f)).abs().max() < 1e-10


def test_resample_paths_agree_in_gradients_and_by_size(monkeypatch):
    f = setup_filter(resample_filter()).to(torch.float64)
    g = torch.Generator().manual_seed(3)
    x = (torch.rand([2, 2, 7, 7], generator=g, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    M = _similarity(2, g, 1.5)
    for impl in ("matmul", "conv"):
        assert torch.autograd.gradcheck(lambda t, impl=impl: resample(t, M, f, impl=impl), (x,), fast_mode=True)
        assert torch.autograd.gradgradcheck(lambda t, impl=impl: resample(t, M, f, impl=impl), (x,), fast_mode=True)
    # 'auto' switches at RESAMPLE_MATMUL_MAX; both sides of the switch give the same pixels.
    import adagan.augment.resample as resample_module

    with pytest.raises(ValueError, match="impl"):
        resample(x, M, f, impl="fft")
    want = resample(x, M, f, impl="matmul")
    for limit in (0, 7, 1000):
        monkeypatch.setattr(resample_module, "RESAMPLE_MATMUL_MAX", limit)
        assert (resample(x, M, f) - want).abs().max() < 1e-12


def test_resample_does_not_depend_on_the_batch():
    """The official code pads by a batch-wide margin (capped at size - 1, zeros beyond); ours reads the
    same mirror extension for every sample, so a sample gives the same pixels alone or with a 3x zoom-out."""
    f = setup_filter(resample_filter()).to(torch.float64)
    g = torch.Generator().manual_seed(1)
    x = torch.rand([2, 3, 16, 16], generator=g, dtype=torch.float64) * 2 - 1
    M = torch.cat([_similarity(1, g), _similarity(1, g, zoom=3.0)])
    assert (resample(x, M, f)[:1] - resample(x[:1], M[:1], f)).abs().max() < 1e-12


def test_filters():
    h = resample_filter()  # sym6, normalised to sum 1
    assert len(h) == 12 and abs(h.sum() - 1) < 1e-12
    # Orthogonal to its even shifts (2 * sum_t h[t] h[t + 2d] = delta_d, to the published coefficients'
    # precision): upsampling with h and decimating after the time-reversed h is the identity.
    for d in range(6):
        assert abs(2 * (h[: len(h) - 2 * d] * h[2 * d:]).sum() - (d == 0)) < 1e-7
    b = filter_bands()
    delta = b.sum(0)
    assert abs(delta[len(delta) // 2] - 1) < 1e-12 and abs(delta).sum() - 1 < 1e-12


def test_identity_warp_reconstructs_the_input():
    f = setup_filter(resample_filter()).to(torch.float64)
    x = images(n=2, res=16).double()
    assert (resample(x, torch.eye(3, dtype=torch.float64).repeat(2, 1, 1), f) - x).abs().max() < 1e-7


@pytest.mark.parametrize("freq", [0.3, 0.45])
def test_frequency_response_of_a_tiny_shift(freq):
    """A 0.001 px shift of a horizontal sinusoid keeps its amplitude (appendix B's orthogonal wavelet
    pair; the official code keeps 0.998 at 0.45 cycles/px, a 23-tap zero-phase filter pair kept 0.58)."""
    f = setup_filter(resample_filter()).to(torch.float64)
    res, c = 64, 16
    u = torch.arange(res, dtype=torch.float64)
    x = torch.cos(2 * math.pi * freq * u).expand(1, 1, res, res).contiguous()
    M = torch.eye(3, dtype=torch.float64)[None].clone()
    M[0, 0, 2] = 0.001
    profile = resample(x, M, f)[0, 0, c:-c, c:-c].mean(0)
    uu = u[c:-c]
    A = torch.stack([torch.cos(2 * math.pi * freq * uu), torch.sin(2 * math.pi * freq * uu)], 1)
    amplitude = torch.linalg.lstsq(A, profile[:, None]).solution.norm()
    assert amplitude >= 0.99


def test_rotations_turn_counter_clockwise_like_the_official_code():
    """Same draw, same image as the official pipe: its inverse matrices rotate by +theta, so k = 1 (and an
    angle of +90 degrees) is torch.rot90(x, 1, dims=(2, 3)), counter-clockwise on screen."""
    x = images(n=2)
    pipe = AugmentPipe(None, rotate90=1, debug_percentile=0.3)  # k = floor(0.3 * 4) = 1
    pipe.p.fill_(1)
    assert torch.equal(pipe(x), torch.rot90(x, 1, dims=(2, 3)))
    # A preview (debug_percentile q) turns once by (2q - 1) * 180 degrees, the second rotation left out as
    # in the official code: q = 0.75 is +90 degrees, blitted exactly; q = 0.625 is 45 degrees.
    pipe = AugmentPipe(None, rotate=1, debug_percentile=0.75)
    pipe.p.fill_(1)
    M = pipe._geometric_matrix(_Draws(2, "cpu", 0.75), 2, 16, 16)
    assert torch.allclose(M[0], torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=M.dtype), atol=1e-12)
    assert torch.equal(pipe(x), torch.rot90(x, 1, dims=(2, 3)))
    c = math.sqrt(0.5)
    pipe.p.fill_(1)
    M = pipe._geometric_matrix(_Draws(2, "cpu", 0.625), 2, 16, 16)
    assert torch.allclose(M[0], torch.tensor([[c, -c, 0], [c, c, 0], [0, 0, 1]], dtype=M.dtype), atol=1e-12)


def test_fractions_at_p_half():
    pipe = AugmentPipe("bgcfnc")
    pipe.p.fill_(0.5)
    torch.manual_seed(0)
    pipe(images(n=3000, res=4))  # the draws do not depend on the size; 4 px keeps this fast
    for name, masks in pipe.applied.items():
        for m in masks:
            want = 1 - math.sqrt(0.5) if name == "rotate" else 0.5
            assert abs(m.float().mean().item() - want) < 0.04, name
    rot = pipe.applied["rotate"]
    assert abs((rot[0] | rot[1]).float().mean().item() - 0.5) < 0.04  # P(any rotation) = p
    assert set(pipe.applied) == set(TRANSFORMS)


def test_every_transform_applied_at_p1():
    pipe = AugmentPipe("bgcfnc")
    pipe.p.fill_(1)
    pipe(images(n=16, res=16))
    assert all(bool(m.all()) for masks in pipe.applied.values() for m in masks)


def luma(x):
    return x[:, :3].mean(1)


def test_colour_transforms_and_luma():
    x = images(n=32)
    torch.manual_seed(0)
    for name in ("hue", "saturation"):
        pipe = AugmentPipe(None, **{name: 1})
        pipe.p.fill_(1)
        y = pipe(x)
        assert not torch.allclose(y, x)
        assert torch.allclose(luma(y), luma(x), atol=1e-5), name
    pipe = AugmentPipe(None, lumaflip=1, debug_percentile=0.9)  # always flips
    pipe.p.fill_(1)
    y = pipe(x)
    assert torch.allclose(luma(y), -luma(x), atol=1e-5)  # luma reflected, magnitude kept
    assert torch.allclose(y - luma(y)[:, None], x - luma(x)[:, None], atol=1e-5)  # chroma untouched


def test_noop_colour_draw_is_identity():
    pipe = AugmentPipe(None, brightness=1, contrast=1, hue=1, saturation=1)
    M = pipe._color_matrix(_Draws(4, "cpu", 0.5), 4, 3)  # median draws: +0, *2^0, 0 deg, *2^0
    assert M is None
    pipe.p.fill_(1)
    M = pipe._color_matrix(_Draws(4, "cpu", 0.8), 4, 3)
    assert M is not None and not torch.allclose(M, torch.eye(4, dtype=M.dtype))


def test_grayscale_and_alpha():
    x1 = images(n=8, c=1)
    pipe = AugmentPipe("bgcfnc")
    pipe.p.fill_(1)
    y = pipe(x1)
    assert y.shape == x1.shape and torch.isfinite(y).all()
    x4 = images(n=8, c=4)
    pipe = AugmentPipe("color")
    pipe.p.fill_(1)
    y = pipe(x4)
    assert torch.equal(y[:, 3], x4[:, 3]) and not torch.allclose(y[:, :3], x4[:, :3])


@pytest.mark.parametrize("res", [16, 64])
def test_never_nan_or_inf(res):
    x = images(n=32 if res == 16 else 4, res=res) * 1.5
    pipe = AugmentPipe("bgcfnc", scale_std=0.5, aniso_std=0.5)
    pipe.p.fill_(1)
    torch.manual_seed(0)
    for _ in range(3):
        y = pipe(x)
        assert y.shape == x.shape and torch.isfinite(y).all()


def test_gradcheck_double_backward():
    pipe = AugmentPipe("bgcfnc", debug_percentile=0.8).double()
    pipe.p.fill_(1)
    x = (torch.rand([1, 1, 8, 8], dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(pipe, (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(pipe, (x,), fast_mode=True)


def test_random_draws_are_seeded_by_torch():
    pipe = AugmentPipe("bgc")
    pipe.p.fill_(0.7)
    x = images(n=8)
    torch.manual_seed(3)
    a = pipe(x)
    torch.manual_seed(3)
    assert torch.equal(a, pipe(x))


def test_bad_settings():
    with pytest.raises(ConfigError, match="unknown --augpipe"):
        AugmentPipe("bgx")
    with pytest.raises(ConfigError, match="DiffAugment's pipe"):
        AugmentPipe("diffaug")
    with pytest.raises(ConfigError, match="unknown --augpipe"):
        build_pipe("bgx")
    with pytest.raises(ConfigError, match="unknown augmentation setting"):
        AugmentPipe("bgc", wobble=1)
    with pytest.raises(ConfigError, match="non-negative"):
        AugmentPipe("bgc", xflip=-1)
    with pytest.raises(ValueError, match="square"):
        AugmentPipe("bgc")(torch.zeros(1, 3, 16, 32))
    with pytest.raises(ValueError, match="channels"):
        AugmentPipe("bgc")(torch.zeros(1, 2, 16, 16))


@pytest.mark.cuda
def test_cuda_matches_shapes_and_is_finite():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    pipe = AugmentPipe("bgcfnc").cuda()
    pipe.p.fill_(0.8)
    x = images(n=32, res=64).cuda().requires_grad_(True)
    y = pipe(x)
    (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    g.square().sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
