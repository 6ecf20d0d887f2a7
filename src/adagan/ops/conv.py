"""2-D convolution with FIR resampling, and StyleGAN2's modulated convolution.

`conv2d_resample` convolves with an optional 2x up/down FIR resampling in the
efficient order: for up=2 a stride-2 transposed convolution followed by the
FIR filter; for down=2 the FIR filter followed by a stride-2 convolution
(1x1 kernels: filter-and-decimate, then the 1x1 conv).

`modulated_conv2d` (StyleGAN2 §2.2, Equations 1 and 3): w'_ijk = s_i * w_ijk, then
demodulation w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + 1e-8). Two equivalent
executions: fused (per-sample weights, one grouped conv) and non-fused (scale
the input by s, shared conv, scale the output by the demodulation coefficient).

The `*_ref` twins spell the same maths out with the slow primitives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from adagan.ops.upfirdn2d import _filter_size, _parse_padding, upfirdn2d, upfirdn2d_ref


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    """conv2d (cross-correlation) or its transpose; flip_weight=False flips the kernel first."""
    if not flip_weight and (w.shape[2] > 1 or w.shape[3] > 1):
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _resample_padding(f, kw, kh, up, down, padding):
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    return px0, px1, py0, py1


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    down: int = 1, padding=0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False) -> torch.Tensor:
    """x: [N, C_in, H, W]; w: [C_out, C_in/groups, kh, kw]; up/down: 1 or 2 (not both)."""
    assert x.ndim == 4 and w.ndim == 4  # [NCHW], [OIkk]
    assert not (up > 1 and down > 1), "up- and downsampling at once is not supported"
    out_ch, in_ch_per_group, kh, kw = w.shape
    px0, px1, py0, py1 = _resample_padding(f, kw, kh, up, down, padding)

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    if up > 1:
        # Transposed conv wants [C_in, C_out/groups, kh, kw].
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_ch // groups, in_ch_per_group, kh, kw)
            w = w.transpose(1, 2).reshape(groups * in_ch_per_group, out_ch // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True,
                  flip_weight=not flip_weight)
        return upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt],
                         gain=up * up, flip_filter=flip_filter)

    if down > 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1])
    return _conv(x, w, groups=groups, flip_weight=flip_weight)


def conv2d_resample_ref(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True,
                        flip_filter=False):
    """Reference: the transposed conv is written as zero insertion + full padding + flipped conv."""
    out_ch, in_ch_per_group, kh, kw = w.shape
    px0, px1, py0, py1 = _resample_padding(f, kw, kh, up, down, padding)
    if not flip_weight:
        w = w.flip([2, 3])
    if up > 1:
        # conv_transpose2d(x, w^T, stride=up) == insert zeros, pad by k-1, correlate with flipped w.
        N, C, H, W = x.shape
        z = x.new_zeros([N, C, (H - 1) * up + 1, (W - 1) * up + 1])
        z[:, :, ::up, ::up] = x
        z = F.pad(z, [kw - 1, kw - 1, kh - 1, kh - 1])
        # (w was flipped above iff not flip_weight, matching the fast path's transposed-conv flip rule.)
        z = F.conv2d(z, w, groups=groups)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        return upfirdn2d_ref(z, f, padding=[px0, px1, py0, py1], gain=up * up, flip_filter=flip_filter)
    if down > 1:
        z = upfirdn2d_ref(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        if kw == 1 and kh == 1:
            z = z[:, :, ::down, ::down]
            return F.conv2d(z, w, groups=groups)
        return F.conv2d(z, w, stride=down, groups=groups)
    z = upfirdn2d_ref(x, None, padding=[px0, px1, py0, py1])
    return F.conv2d(z, w, groups=groups)


def _demod_coefs(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """[N, O]: 1/sqrt(sum_{i,k} (s_i w_oik)^2 + 1e-8), computed as (s^2) @ (sum_k w^2)^T.

    Factoring the sum avoids materialising the [N, O, I, k, k] modulated weights.
    """
    return (styles.to(weight.dtype).square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     noise: torch.Tensor | None = None, up: int = 1, down: int = 1, padding=0,
                     resample_filter: torch.Tensor | None = None, demodulate: bool = True,
                     flip_weight: bool = True, fused_modconv: bool = True) -> torch.Tensor:
    """x: [N, I, H, W]; weight: [O, I, k, k]; styles: [N, I]; noise broadcastable to the output."""
    N = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    assert x.ndim == 4 and x.shape[1] == in_ch, f"x must be [N, {in_ch}, H, W], got {list(x.shape)}"
    assert styles.shape == (N, in_ch), f"styles must be [{N}, {in_ch}], got {list(styles.shape)}"  # [NI]

    # fp16 safety: rescale so the products cannot overflow; demodulation undoes the scale.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / (in_ch * kh * kw) ** 0.5 / weight.norm(float("inf"), dim=[1, 2, 3],
                                                                      keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    dcoefs = _demod_coefs(weight, styles) if demodulate else None  # [NO]

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(N, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down,
                            padding=padding, flip_weight=flip_weight)
        if demodulate:
            x = x * dcoefs.to(x.dtype).reshape(N, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    w = weight.unsqueeze(0) * styles.reshape(N, 1, -1, 1, 1)  # [NOIkk]
    if demodulate:
        w = w * dcoefs.reshape(N, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                        groups=N, flip_weight=flip_weight)
    x = x.reshape(N, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


def modulated_conv2d_ref(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
                         demodulate=True, flip_weight=True, fused_modconv=True):
    """Reference: one sample at a time, weights modulated explicitly (fused_modconv is ignored)."""
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        outs.append(conv2d_resample_ref(x[n: n + 1], w, f=resample_filter, up=up, down=down,
                                        padding=padding, flip_weight=flip_weight))
    out = torch.cat(outs)
    if noise is not None:
        out = out + noise
    return out
