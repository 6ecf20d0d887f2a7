"""Pictures of what the discriminator sees: real images and their augmented versions, and a sheet of each
transform at a few fixed strengths (draws at fixed quantiles instead of random)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from adagan.augment import diffaug
from adagan.augment.controller import build_pipe
from adagan.augment.pipeline import AUGPIPES, GROUPS, AugmentPipe
from adagan.config import DIFFAUG_AUGPIPES
from adagan.ops.image import make_grid, to_uint8

SHEET_QUANTILES = (0.02, 0.16, 0.5, 0.84, 0.98)


def to_rgb_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW floats in [-1, 1] -> NHWC uint8 RGB (1 channel -> grey, 4 -> composited on white)."""
    x = images.detach().float().cpu().clamp(-1, 1)
    if x.shape[1] == 4:
        alpha = (x[:, 3:] + 1) / 2
        x = x[:, :3] * alpha + (1 - alpha)  # white is +1
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return to_uint8(x).permute(0, 2, 3, 1).numpy()


def tile(rows: list[np.ndarray], pad: int = 2) -> Image.Image:
    """rows: NHWC uint8 arrays of the same size and length -> one white-separated grid image."""
    return Image.fromarray(make_grid(np.concatenate(rows), cols=len(rows[0]), pad=pad, fill=255))


def augment_grid(reals: torch.Tensor, augpipe: str, p: float, rows: int = 4, seed: int = 0) -> Image.Image:
    """First row the reals ([-1, 1] NCHW), then `rows` independently augmented copies at probability p."""
    pipe = build_pipe(augpipe).to(reals.device)
    pipe.p.fill_(p)
    torch.manual_seed(seed)
    out = [to_rgb_uint8(reals)]
    with torch.no_grad():
        for _ in range(rows):
            out.append(to_rgb_uint8(pipe(reals)))
    return tile(out)


def transform_sheet(image: torch.Tensor, augpipe: str, quantiles=SHEET_QUANTILES, scale: int = 2) -> Image.Image:
    """One row per transform enabled by `augpipe`, one column per quantile of its random parameters.

    image: one [1, C, H, W] image in [-1, 1]. Each row applies only that transform (with probability 1),
    its parameters drawn at the column's quantile (0.5 is the median draw, usually the identity).
    """
    if augpipe in DIFFAUG_AUGPIPES:
        names = [t for g in AUGPIPES[augpipe] for t in diffaug.TRANSFORMS[g]]
        pipe = build_pipe(augpipe).to(image.device)

        def apply(name, q):
            return pipe(image, diffaug.quantile_draws(image, q, name))
    else:
        names = [t for g in AUGPIPES[augpipe] for t in GROUPS[g]]

        def apply(name, q):
            pipe = AugmentPipe(None, debug_percentile=q, **{name: 1}).to(image.device)
            pipe.p.fill_(1.0)
            return pipe(image)
    if image.shape[1] == 1:
        names = [t for t in names if t not in ("hue", "saturation")]
    rows, labels = [], []
    with torch.no_grad():
        for name in names:
            rows.append(np.stack([to_rgb_uint8(image)[0]] + [to_rgb_uint8(apply(name, q))[0] for q in quantiles]))
            labels.append(name)
    grid = tile(rows)
    if scale > 1:
        grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
    label_w = 80
    sheet = Image.new("RGB", (grid.width + label_w, grid.height + 14), "white")
    sheet.paste(grid, (label_w, 14))
    draw = ImageDraw.Draw(sheet)
    row_h = (grid.height - 2 * scale) / max(1, len(rows))
    for i, name in enumerate(labels):
        draw.text((4, 14 + int(i * row_h + row_h / 2) - 5), name, fill=(0, 0, 0))
    col_w = (grid.width - 2 * scale) / (len(quantiles) + 1)
    for j, head in enumerate(["input", *[f"q={q:g}" for q in quantiles]]):
        draw.text((label_w + int(j * col_w) + 4, 1), head, fill=(0, 0, 0))
    return sheet
