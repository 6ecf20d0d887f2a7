"""The geometric resampling of ADA's pipeline (Karras et al. 2020, appendix B), on its own.

`blit` copies a sample exactly when its inverse matrix only flips, turns by 90 degrees and shifts by whole
pixels (a pixel permutation with reflection at the borders). `resample` resamples any other sample once
with the paper's orthogonal wavelet pair: the mirror-extended input is upsampled 2x with the 12-tap
symlet-6 ('sym6') low-pass, sampled bilinearly on a 2x output grid, then low-passed with the time-reversed
sym6 and decimated 2x; it runs as separable matrices (small images) or convolutions (large ones), and
`resample_ref` is its slow reference twin (the padded construction), used in the tests. Differentiable with
respect to the input, to second order (R1 is taken through the pipe).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from adagan.ops import downsample2d, upfirdn2d, upsample2d

# The symlet-6 wavelet low-pass (decomposition) filter; a public constant of the symlet family.
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]


def resample_filter() -> np.ndarray:
    """The sym6 wavelet low-pass (12 taps) normalised to sum 1: `resample` upsamples by convolving with it
    and low-passes before decimation by correlating with it (i.e. convolving with its time-reverse)."""
    h = np.asarray(SYM6, np.float64)
    return h / h.sum()


def mirror_index(i: torch.Tensor, n: int) -> torch.Tensor:
    """Map integer indices or continuous positions into [0, n - 1] by reflection without repeating the
    edge (whole-sample symmetric, 'reflect' padding)."""
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = torch.remainder(i, period)
    return torch.where(i > n - 1, period - i, i)


def mirror_pad(x: torch.Tensor, px0: int, px1: int, py0: int, py1: int) -> torch.Tensor:
    """Reflect-pad NCHW by any amount (torch's reflect mode needs pads smaller than the size)."""
    H, W = x.shape[2], x.shape[3]
    ix = mirror_index(torch.arange(-px0, W + px1, device=x.device), W)
    iy = mirror_index(torch.arange(-py0, H + py1, device=x.device), H)
    return x.index_select(3, ix).index_select(2, iy)


def blit(x: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """Exact copy for integer inverse matrices M [N, 3, 3] (flips, 90-degree turns, whole-pixel shifts),
    reflecting at the borders."""
    N, C, H, W = x.shape
    dev = x.device
    u = torch.arange(W, device=dev, dtype=torch.float64) - (W - 1) / 2
    v = torch.arange(H, device=dev, dtype=torch.float64) - (H - 1) / 2
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    coords = torch.stack([uu.flatten(), vv.flatten(), torch.ones_like(uu.flatten())])  # [3, HW]
    src = M[:, :2, :].to(torch.float64) @ coords  # [N, 2, HW]
    ix = mirror_index(torch.round(src[:, 0] + (W - 1) / 2).long(), W)
    iy = mirror_index(torch.round(src[:, 1] + (H - 1) / 2).long(), H)
    idx = (iy * W + ix)[:, None, :].expand(N, C, H * W)
    return x.reshape(N, C, H * W).gather(2, idx).reshape(N, C, H, W)


def _lattice(pos: torch.Tensor, n: int) -> tuple[torch.Tensor, int, int]:
    """Positions along one axis (input pixel index units) -> the 2x lattice of `resample` (m = 2 * pos),
    moved by whole periods of the mirror extension into [-(n - 1), 3(n - 1)), one period centred on the
    image. Returns m and the lattice range [m0, m1] that bilinear sampling reads."""
    m = 2 * pos
    if n == 1:
        m = torch.zeros_like(m)  # the mirror extension of one pixel is constant
    else:
        period = 4 * (n - 1)  # the mirror extension repeats every 2(n - 1) pixels
        m = m - period * torch.floor((m + (n - 1)) / period)
    return m, int(torch.floor(m.min())), int(torch.floor(m.max())) + 1


def _upsample_matrix(f: torch.Tensor, m0: int, m1: int, n: int) -> torch.Tensor:
    """[m1 - m0 + 1, n]: lattice samples m0..m1 of the 2x upsampled mirror extension of n pixels, as a
    linear map of the pixels. Tap s of pixel k lands on lattice sample 2k + s - o (position k + (s - o)/2,
    o = L/2 - 1), with gain 2 (each parity of the taps sums to 1/2)."""
    L = f.shape[0]
    m = torch.arange(m0, m1 + 1, device=f.device)[:, None]
    s = torch.arange(L, device=f.device)[None, :]
    two_k = m - s + L // 2 - 1  # [Lm, L]
    w = torch.where(two_k % 2 == 0, 2 * f[None, :], 0).to(f.dtype)
    U = f.new_zeros([m1 - m0 + 1, n])
    return U.scatter_add_(1, mirror_index(torch.div(two_k, 2, rounding_mode="floor"), n), w)


def _downsample_matrix(f: torch.Tensor, n: int) -> torch.Tensor:
    """[n, 2n + L - 2]: output pixel i = sum_t f[t] * grid point 2i + t (the time-reversed filter, then
    every other sample)."""
    L = f.shape[0]
    D = f.new_zeros([n, 2 * n + L - 2])
    cols = 2 * torch.arange(n, device=f.device)[:, None] + torch.arange(L, device=f.device)[None, :]
    return D.scatter_(1, cols, f[None, :].expand(n, L).contiguous())


# Images of at most this many pixels per side are up- and downsampled by matrix products in `resample`,
# larger ones by convolution. The matrices cost O(size) per output pixel, the 12-tap convolutions O(1), yet
# on CPU the matrix products were faster at every size from 32 to 1024 px (2.2-8x forward+backward; torch's
# depthwise convolution of the zero-inserted image is slow): `python benchmarks/augment.py --resample both`,
# docs/benchmarks.md "Augmentation". Not measured on CUDA.
RESAMPLE_MATMUL_MAX = 1024


def _upsample_conv(x: torch.Tensor, f: torch.Tensor, mv0: int, mv1: int, mu0: int, mu1: int) -> torch.Tensor:
    """The lattice samples [mv0, mv1] x [mu0, mu1] of the 2x upsampled mirror extension (what the matrices
    of `_upsample_matrix` compute), by zero insertion and the separable 12-tap convolution: lattice sample m
    is output j = m + o of the full convolution of the zero-inserted extension, o = L/2 - 1."""
    H, W = x.shape[2], x.shape[3]
    L = f.shape[0]
    o = L // 2 - 1
    # Extension pixels k0..k1 feed the lattice range: k = (j - s) / 2 for taps s in [0, L).
    kv0, kv1 = (mv0 + o - (L - 1)) // 2, (mv1 + o) // 2
    ku0, ku1 = (mu0 + o - (L - 1)) // 2, (mu1 + o) // 2
    dev = x.device
    xe = x.index_select(2, mirror_index(torch.arange(kv0, kv1 + 1, device=dev), H))
    xe = xe.index_select(3, mirror_index(torch.arange(ku0, ku1 + 1, device=dev), W))
    # upfirdn2d output i reads the zero-inserted, padded input from i on: i = j - 2 k0 - (L - 1) + pad0.
    py0, px0 = L - 1 - (mv0 + o - 2 * kv0), L - 1 - (mu0 + o - 2 * ku0)
    py1 = (mv1 - mv0 + 1) - 2 * (kv1 - kv0 + 1) - py0 + L - 1
    px1 = (mu1 - mu0 + 1) - 2 * (ku1 - ku0 + 1) - px0 + L - 1
    return upfirdn2d(xe, f, up=2, padding=[px0, px1, py0, py1], gain=4)


def _downsample_conv(ys: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Output pixel i = sum_t f[t] * ys[2i + t] per axis (`_downsample_matrix`): correlate, keep every other."""
    return upfirdn2d(ys, f, down=2, flip_filter=True)


def resample(x: torch.Tensor, M: torch.Tensor, f: torch.Tensor, impl: str = "auto") -> torch.Tensor:
    """Apply inverse matrices M [N, 3, 3] (output -> input, centred pixel units) with one resampling.

    f: the 1-D wavelet low-pass (even length L, sums to 1; `resample_filter`). The input is extended by
    mirroring (whole-sample symmetric) and upsampled 2x: tap s of input pixel k lands at position
    k + (s - o)/2, o = L/2 - 1. Each output pixel i gathers tap t from the bilinear sample at output
    position i + (t - o)/2 (a 2x grid of 2*size + L - 2 points per axis), i.e. the time-reversed filter
    before decimation; with an orthogonal f an identity warp returns the input. This is the layout of the
    official code (upsample with 'same' padding, a grid of 2*(size + L/2) points, decimate and crop L/2).

    Only the part of the upsampled extension that the sample positions read is computed: the extension
    repeats every 2(size - 1) pixels, so positions are moved by whole periods next to the image and the
    upsampled region is at most one period (plus one sample) per axis, whatever the warp.
    impl: how the separable up- and downsampling run. 'matmul': as matrix products with the mirroring
    folded in (O(size) work per pixel, but faster on CPU than the convolutions up to 1024 px); 'conv':
    mirror-gather, zero insertion and 12-tap convolutions (upfirdn2d); 'auto': matmul up to
    RESAMPLE_MATMUL_MAX px per side, conv above. Both are the same function (tests/augment);
    `resample_ref` is the padded construction.
    """
    N, C, H, W = x.shape
    dev = x.device
    L = f.shape[0]
    o = L // 2 - 1
    if impl == "auto":
        impl = "matmul" if max(H, W) <= RESAMPLE_MATMUL_MAX else "conv"
    if impl not in ("matmul", "conv"):
        raise ValueError(f"resample impl must be 'auto', 'matmul' or 'conv', got {impl!r}")
    M = M.to(torch.float64)
    nu = torch.arange(-o, 2 * (W - 1) + L - o, device=dev, dtype=torch.float64) / 2 - (W - 1) / 2
    nv = torch.arange(-o, 2 * (H - 1) + L - o, device=dev, dtype=torch.float64) / 2 - (H - 1) / 2
    gv, gu = torch.meshgrid(nv, nu, indexing="ij")
    pts = torch.stack([gu, gv, torch.ones_like(gu)], dim=-1)  # [Hs, Ws, 3] centred output units
    src = torch.einsum("nij,hwj->nhwi", M[:, :2, :], pts)  # [N, Hs, Ws, 2] centred input units
    mu, mu0, mu1 = _lattice(src[..., 0] + (W - 1) / 2, W)
    mv, mv0, mv1 = _lattice(src[..., 1] + (H - 1) / 2, H)
    f = f.to(x.dtype)
    if impl == "matmul":
        xu = _upsample_matrix(f, mv0, mv1, H) @ x @ _upsample_matrix(f, mu0, mu1, W).T  # [N, C, Lv, Lu]
    else:
        xu = _upsample_conv(x, f, mv0, mv1, mu0, mu1)
    Lv, Lu = mv1 - mv0 + 1, mu1 - mu0 + 1
    grid = torch.stack([(2 * (mu - mu0) + 1) / Lu - 1, (2 * (mv - mv0) + 1) / Lv - 1], dim=-1).to(x.dtype)
    ys = F.grid_sample(xu, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if impl == "matmul":
        return _downsample_matrix(f, H) @ ys @ _downsample_matrix(f, W).T
    return _downsample_conv(ys, f)


def resample_ref(x: torch.Tensor, M: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Reference twin of `resample`, the padded construction: mirror-pad by the whole margin that the
    transformed corners of the sampling grid need, upsample 2x, sample bilinearly on a grid of
    2*(size + L/2) points, low-pass with the time-reversed filter, decimate 2x and crop L/2 per side.
    Slow for large warps (the padding grows with them); used in the tests.

    Unlike the official code, the margin is not capped at size - 1 (beyond which it samples zeros) and
    reaches past the filter taps, so every sample reads the same mirror extension whatever the batch.
    """
    N, C, H, W = x.shape
    dev = x.device
    L = f.shape[0]
    M = M.to(torch.float64)
    # Grid point j sits at output pixel position (j - L/2)/2, in centred units.
    ju = (torch.arange(2 * W + L, device=dev, dtype=torch.float64) - L / 2) / 2 - (W - 1) / 2
    jv = (torch.arange(2 * H + L, device=dev, dtype=torch.float64) - L / 2) / 2 - (H - 1) / 2
    corners = torch.tensor([[ju[0], jv[0], 1], [ju[-1], jv[0], 1], [ju[0], jv[-1], 1], [ju[-1], jv[-1], 1]],
                           dtype=torch.float64, device=dev).T  # [3, 4]
    cs = M[:, :2, :] @ corners  # [N, 2, 4] centred input units
    half = torch.tensor([(W - 1) / 2, (H - 1) / 2], dtype=torch.float64, device=dev)
    lo = -(cs.amin(dim=(0, 2)) + half)  # how far the grid reaches left of / above pixel 0
    hi = cs.amax(dim=(0, 2)) - half  # and right of / below the last pixel
    reach = L // 2 + 1  # upsampling taps + bilinear neighbour, in input pixels, with room to spare
    px0, py0 = (max(0, math.ceil(float(v))) + reach for v in lo.tolist())
    px1, py1 = (max(0, math.ceil(float(v))) + reach for v in hi.tolist())
    xp = mirror_pad(x, px0, px1, py0, py1)
    xu = upsample2d(xp, f, up=2)  # [N, C, 2Hp, 2Wp], sample k at padded position k/2
    Hu, Wu = xu.shape[2], xu.shape[3]
    gv, gu = torch.meshgrid(jv, ju, indexing="ij")
    pts = torch.stack([gu, gv, torch.ones_like(gu)], dim=-1)  # [Hs, Ws, 3]
    src = torch.einsum("nij,hwj->nhwi", M[:, :2, :], pts)  # centred input units
    ku = 2 * (src[..., 0] + (W - 1) / 2 + px0)
    kv = 2 * (src[..., 1] + (H - 1) / 2 + py0)
    grid = torch.stack([(2 * ku + 1) / Wu - 1, (2 * kv + 1) / Hu - 1], dim=-1).to(x.dtype)
    ys = F.grid_sample(xu, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return downsample2d(ys, f, down=2, padding=-(L // 2), flip_filter=True)
