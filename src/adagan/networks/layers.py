"""Building blocks with equalized learning rate (Karras et al. 2018, "Progressive Growing of GANs", Section 4.1).

Parameters are stored with unit-variance init and scaled at run time:
fully connected weight gain `lr_mul / sqrt(fan_in)`, bias gain `lr_mul`;
conv weight gain `1 / sqrt(in * k * k)`. Activations are leaky ReLU (slope
0.2) times sqrt(2), optionally clamped to +-conv_clamp.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from adagan.ops import bias_act, conv2d_resample, setup_filter

FIR = [1, 3, 3, 1]


class FullyConnectedLayer(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        # Stored as N(0, 1/lr_mul^2) so that weight * weight_gain ~ N(0, 1/fan_in).
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


class Conv2dLayer(nn.Module):
    """Conv with optional 2x FIR up/downsampling, bias, activation, gain and clamp."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.activation = activation
        self.up, self.down = up, down
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.register_buffer("resample_filter", setup_filter(FIR), persistent=False)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        x = conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding, flip_weight=(self.up == 1))
        act_gain = (math.sqrt(2) if self.activation in ("lrelu", "relu") else 1.0) * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=act_gain, clamp=act_clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, activation={self.activation},"
                f" up={self.up}, down={self.down}")


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """x * rsqrt(mean(x^2) + eps): projects latents onto the sphere of radius sqrt(dim)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class MinibatchStdLayer(nn.Module):
    """Appends the standard deviation over groups of samples as extra feature maps.

    Groups take every (N/G)-th sample: sample n belongs to group n mod (N/G).
    If N is not divisible by the group size, the largest divisor of N below it is used.
    """

    def __init__(self, group_size: int, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        G = max(1, min(self.group_size, N)) if self.group_size else N
        while N % G:
            G -= 1
        F = self.num_channels
        c = C // F
        y = x.reshape(G, -1, F, c, H, W)  # [GnFcHW]
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()  # [nFcHW] std over the group
        y = y.mean(dim=[2, 3, 4])  # [nF] averaged over channels and pixels
        y = y.reshape(-1, F, 1, 1).repeat(G, 1, H, W)  # [NFHW]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
