"""Fused bias + activation + gain + clamp, the per-layer epilogue of StyleGAN2.

y = clamp(act(x + b) * gain, -clamp, clamp). `gain=None` uses the activation's
default gain (sqrt(2) for (leaky) ReLU: it keeps unit variance, He et al. 2015 §2.2, the constant
behind the equalized learning rate of Karras et al. 2018 §4.1).
`bias_act_ref` spells the same thing out elementwise for the tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# name -> (default alpha, default gain)
ACTIVATIONS: dict[str, tuple[float, float]] = {
    "linear": (0.0, 1.0),
    "relu": (0.0, math.sqrt(2)),
    "lrelu": (0.2, math.sqrt(2)),
    "tanh": (0.0, 1.0),
    "sigmoid": (0.0, 1.0),
}


def _defaults(act: str, alpha, gain):
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; choose one of {sorted(ACTIVATIONS)}")
    da, dg = ACTIVATIONS[act]
    return (da if alpha is None else float(alpha)), (dg if gain is None else float(gain))


def _add_bias(x: torch.Tensor, b: torch.Tensor | None, dim: int) -> torch.Tensor:
    if b is None:
        return x
    assert b.ndim == 1 and b.shape[0] == x.shape[dim], "bias must be [C] matching x.shape[dim]"
    shape = [1] * x.ndim
    shape[dim] = -1
    return x + b.to(x.dtype).reshape(shape)


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
             alpha: float | None = None, gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    alpha, gain = _defaults(act, alpha, gain)
    x = _add_bias(x, b, dim)
    if act == "lrelu":
        x = F.leaky_relu(x, alpha)
    elif act == "relu":
        x = F.relu(x)
    elif act == "tanh":
        x = torch.tanh(x)
    elif act == "sigmoid":
        x = torch.sigmoid(x)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def bias_act_ref(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
                 alpha: float | None = None, gain: float | None = None,
                 clamp: float | None = None) -> torch.Tensor:
    alpha, gain = _defaults(act, alpha, gain)
    x = _add_bias(x, b, dim)
    if act in ("lrelu", "relu"):
        x = torch.where(x >= 0, x, x * alpha)
    elif act == "tanh":
        x = (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x))
    elif act == "sigmoid":
        x = 1 / (1 + torch.exp(-x))
    x = x * gain
    if clamp is not None and clamp >= 0:
        x = torch.minimum(torch.maximum(x, x.new_tensor(-clamp)), x.new_tensor(clamp))
    return x
