"""Pure-PyTorch tensor ops (no custom CUDA), each with a slow `*_ref` twin."""

from adagan.ops.bias_act import bias_act, bias_act_ref
from adagan.ops.conv import conv2d_resample, conv2d_resample_ref, modulated_conv2d, modulated_conv2d_ref
from adagan.ops.upfirdn2d import (
    downsample2d,
    filter2d,
    setup_filter,
    upfirdn2d,
    upfirdn2d_ref,
    upsample2d,
)

__all__ = [
    "bias_act", "bias_act_ref", "conv2d_resample", "conv2d_resample_ref", "modulated_conv2d",
    "modulated_conv2d_ref", "upfirdn2d", "upfirdn2d_ref", "setup_filter", "filter2d", "upsample2d",
    "downsample2d",
]
