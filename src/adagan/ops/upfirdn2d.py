"""Upsample, FIR-filter, downsample: the resampling primitive of StyleGAN2.

`upfirdn2d(x, f, up, down, padding)` does, per channel:
  1. upsample by inserting `up - 1` zeros after every pixel,
  2. pad (or crop, for negative values) by `padding = [x0, x1, y0, y1]`,
  3. convolve with the FIR filter `f` (true convolution: f is flipped unless flip_filter),
  4. keep every `down`-th pixel (computed as the convolution's stride).
`f` is a 1-D filter (applied separably, rows then columns) or a 2-D one.
All ops are pure PyTorch and differentiable to any order.
`upfirdn2d_ref` is the slow, literal twin used by the tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    a, b = v
    return int(a), int(b)


def _parse_padding(padding) -> tuple[int, int, int, int]:
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    px0, px1, py0, py1 = padding
    return px0, px1, py0, py1


def setup_filter(f, normalize: bool = True, separable: bool | None = None, device=None) -> torch.Tensor:
    """A float32 FIR filter from a list/tensor; 1-D filters stay 1-D (separable).

    normalize: scale so the (2-D, i.e. outer-product) filter sums to 1.
    separable=False turns a 1-D filter into its 2-D outer product.
    """
    f = torch.as_tensor(f if f is not None else [1], dtype=torch.float32, device=device)
    assert f.ndim in (0, 1, 2), "filter must be 0-, 1- or 2-D"
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = f.ger(f)
    if normalize:
        f = f / f.sum()
    return f


def _filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[1], f.shape[0]


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up=1, down=1, padding=0,
              flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Pad, upsample, filter and downsample a batch of images x: [N, C, H, W]."""
    assert x.ndim == 4, "x must be [N, C, H, W]"  # [NCHW]
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    N, C, H, W = x.shape

    # 1. Zero insertion: [N, C, H, 1, W, 1] padded to [N, C, H, upy, W, upx].
    if upx > 1 or upy > 1:
        x = x.reshape(N, C, H, 1, W, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(N, C, H * upy, W * upx)

    # 2. Pad / crop.
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    if min(px0, px1, py0, py1) < 0:
        x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]

    # 3+4. Depthwise convolution (conv2d correlates, so flip for a true convolution); decimation
    # is the conv's stride, so dropped outputs are never computed.
    f = f.to(x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if torch.onnx.is_in_onnx_export():
        # ONNX needs a kernel of known shape: filter [N*C, 1, H, W] with one shared [1, 1, kh, kw]
        # kernel instead of a depthwise conv whose kernel is repeated C times (same numbers).
        shape = x.shape
        x = x.reshape(-1, 1, shape[2], shape[3])
        if f.ndim == 2:
            x = F.conv2d(x, f[None, None], stride=(downy, downx))
        else:
            x = F.conv2d(x, f[None, None, None], stride=(1, downx))
            x = F.conv2d(x, f[None, None, :, None], stride=(downy, 1))
        return x.reshape(shape[0], shape[1], x.shape[2], x.shape[3])
    if f.ndim == 2:
        return F.conv2d(x, f[None, None].repeat(C, 1, 1, 1), groups=C, stride=(downy, downx))
    fw = f[None, None, None].repeat(C, 1, 1, 1)  # [C,1,1,k] horizontal pass
    x = F.conv2d(x, fw, groups=C, stride=(1, downx))
    return F.conv2d(x, fw.transpose(2, 3), groups=C, stride=(downy, 1))


def upfirdn2d_ref(x: torch.Tensor, f: torch.Tensor | None, up=1, down=1, padding=0,
                  flip_filter: bool = False, gain: float = 1) -> torch.Tensor:
    """Literal reference: index-assigned zero insertion and an explicit sum over filter taps."""
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    if f.ndim == 1:
        f = f.ger(f)
    f = f.to(x.dtype) * gain
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    N, C, H, W = x.shape
    z = x.new_zeros([N, C, H * upy, W * upx])
    z[:, :, ::upy, ::upx] = x
    z = F.pad(z, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    z = z[:, :, max(-py0, 0): z.shape[2] - max(-py1, 0), max(-px0, 0): z.shape[3] - max(-px1, 0)]
    fh, fw = f.shape
    Ho, Wo = z.shape[2] - fh + 1, z.shape[3] - fw + 1
    if not flip_filter:
        f = f.flip([0, 1])
    out = z.new_zeros([N, C, Ho, Wo])
    for i in range(fh):
        for j in range(fw):
            out = out + f[i, j] * z[:, :, i: i + Ho, j: j + Wo]
    return out[:, :, ::downy, ::downx]


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl=upfirdn2d):
    """Filter with f, keeping the size when `padding` is 0 (the padding is added here)."""
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return impl(x, f, padding=p, flip_filter=flip_filter, gain=gain)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl=upfirdn2d):
    """2x (or `up`x) upsampling; output is exactly up*H x up*W when padding is 0."""
    upx, upy = _pair(up)
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return impl(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl=upfirdn2d):
    """2x (or `down`x) downsampling; output is exactly H/down x W/down when padding is 0."""
    downx, downy = _pair(down)
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2,
         py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return impl(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain)
