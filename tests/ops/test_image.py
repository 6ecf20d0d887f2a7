"""The one float -> uint8 conversion and the one grid layout (ops/image.py)."""

import numpy as np
import torch

from adagan.ops.image import make_grid, to_uint8


def test_to_uint8_maps_the_range_and_clamps():
    x = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])  # x * 127.5 + 128, truncated: 0 -> 128, 0.5 -> 191.75
    assert to_uint8(x).tolist() == [0, 0, 128, 191, 255, 255]
    assert to_uint8(torch.zeros(2, 3, 4, 5)).shape == (2, 3, 4, 5)


def test_make_grid_layout_padding_and_missing_cells():
    imgs = np.arange(1, 4, dtype=np.uint8)[:, None, None, None].repeat(2, 1).repeat(2, 2)  # [3, 2, 2, 1]
    g = make_grid(imgs, cols=2)
    assert g.shape == (4, 4, 1) and g[0, 0, 0] == 1 and g[0, 2, 0] == 2 and g[2, 0, 0] == 3 and g[2, 2, 0] == 0
    g = make_grid(imgs, cols=2, rows=1, pad=1, fill=255)  # the third image does not fit
    assert g.shape == (4, 7, 1) and g[0, 0, 0] == 255 and g[1, 1, 0] == 1 and g[1, 4, 0] == 2
    assert make_grid(imgs).shape == (4, 4, 1)  # cols = ceil(sqrt(3)) = 2
