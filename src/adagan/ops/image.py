"""Images at the file boundary: uint8 <-> float in [-1, 1], and many images tiled into one grid.

Inside adagan images are float NCHW in [-1, 1]; files, metrics detectors and previews take uint8.
`to_uint8` is the one conversion (x * 127.5 + 128, clamped to [0, 255] and truncated, i.e. rounded
half up, as StyleGAN's tools do) and `make_grid` the one grid layout (row-major, optional padding),
used by the training grids, `adagan generate`, the metrics, the studio and the augmentation preview.
They live in `ops` because every layer may import it.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def to_float(img: torch.Tensor, device=None) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1] (x / 127.5 - 1), on `device` (None: where they are)."""
    return img.to(device=device, dtype=torch.float32) / 127.5 - 1


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """float images in [-1, 1] (any layout, any device) -> uint8 of the same shape and device."""
    return (img.detach().to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def make_grid(images: np.ndarray, cols: int | None = None, rows: int | None = None, *, pad: int = 0,
              fill: int = 0) -> np.ndarray:
    """uint8 [N, H, W, C] -> one uint8 image [rows*(H+pad)+pad, cols*(W+pad)+pad, C], row-major.

    cols defaults to ceil(sqrt(N)), rows to as many as the images need; images beyond rows*cols are
    left out, missing cells and the `pad`-pixel gaps are `fill`.
    """
    n, H, W, C = images.shape
    cols = cols or max(math.ceil(math.sqrt(n)), 1)
    rows = rows or max(math.ceil(n / cols), 1)
    grid = np.full([rows * (H + pad) + pad, cols * (W + pad) + pad, C], fill, dtype=np.uint8)
    for i, img in enumerate(images[: rows * cols]):
        r, c = divmod(i, cols)
        y, x = pad + r * (H + pad), pad + c * (W + pad)
        grid[y: y + H, x: x + W] = img
    return grid
