"""Hue distance of fakes grids to the training images (docs/training.md "What the default run shows", issue 27).

    python benchmarks/grid_hue.py runs/NAME                      # every fakesNNNNNN.png of a run
    python benchmarks/grid_hue.py a.png b.png --data builtin:twemoji/smileys

Each grid cell's hue is the circular mean of its pixels' HSV hue, weighted by saturation, over the pixels
brighter than 0.15; cells with less than one pixel's worth of weight (white, grey, black, padding) are left
out. The 12-bin histograms of the cells' hues and of the training images' hues are compared by total
variation distance (0: the same histogram, 1: disjoint). Two references are printed with it: two random
halves of the training images against each other (the yardstick issue 27 names), and a grid's worth of
training images drawn with replacement against all of them (what a generator that samples exactly the
training distribution would score).

Beside the distance, `off-hue` is the share of the grid's cells in the hue bins that hold less than 1% of
the training images: colours the data does not have, which is what a hue leak adds (a distance made of
a lack in bins the data fills instead is a mode the generator has not found yet, e.g. too few red
hearts). `--metrics leak1k` (docs/metrics.md) measures colour and geometry on 1,000 samples instead of
one grid.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

BINS = 12


def cell_hues(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] -> the hues in [0, 1) of the cells that have colour (see the module docstring)."""
    x = images.astype(np.float32) / 255
    mx, mn = x.max(-1), x.min(-1)
    d = mx - mn
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    h = np.zeros_like(mx)  # hexagonal HSV hue in sixths of a turn
    m = d > 1e-6
    i = m & (mx == r)
    h[i] = ((g - b)[i] / d[i]) % 6
    i = m & (mx == g) & (mx != r)
    h[i] = (b - r)[i] / d[i] + 2
    i = m & (mx == b) & (mx != r) & (mx != g)
    h[i] = (r - g)[i] / d[i] + 4
    angle = h / 6 * 2 * np.pi
    w = np.where(mx > 0, d / np.maximum(mx, 1e-6), 0) * (mx > 0.15)
    hx, hy = (w * np.cos(angle)).sum((1, 2)), (w * np.sin(angle)).sum((1, 2))
    keep = w.sum((1, 2)) >= 1
    return ((np.arctan2(hy, hx) % (2 * np.pi)) / (2 * np.pi))[keep]


def _hist(hues: np.ndarray) -> np.ndarray:
    """The 12-bin histogram of hues in [0, 1), as shares of their count."""
    return np.histogram(hues, bins=BINS, range=(0, 1))[0] / max(len(hues), 1)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between the 12-bin histograms of two sets of hues."""
    return float(0.5 * np.abs(_hist(a) - _hist(b)).sum())


def off_hue(hues: np.ndarray, real: np.ndarray, floor: float = 0.01) -> float:
    """Share of `hues` in the 12 bins that hold less than `floor` of the training images' hues."""
    return float(_hist(hues)[_hist(real) < floor].sum())


def grid_cells(path: Path, res: int) -> np.ndarray:
    """A grid PNG of res x res cells (no padding between them, as the fakes grids) -> uint8 [N, res, res, 3]."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"))
    H, W = a.shape[0] // res * res, a.shape[1] // res * res
    if H == 0 or W == 0:
        raise ValueError(f"{path}: smaller than one {res}x{res} cell")
    a = a[:H, :W]
    return a.reshape(H // res, res, W // res, res, 3).transpose(0, 2, 1, 3, 4).reshape(-1, res, res, 3)


def references(real: np.ndarray, n_grid: int, splits: int, seed: int) -> dict[str, float]:
    """Median and 95th percentile of the halves' distance and of a grid of reals drawn with replacement."""
    rng = np.random.default_rng(seed)
    halves, boot = [], []
    for _ in range(splits):
        p = rng.permutation(len(real))
        halves.append(distance(real[p[: len(real) // 2]], real[p[len(real) // 2:]]))
        boot.append(distance(rng.choice(real, n_grid), real))
    return {"halves_median": float(np.median(halves)), "halves_p95": float(np.percentile(halves, 95)),
            "drawn_median": float(np.median(boot)), "drawn_p95": float(np.percentile(boot, 95))}


def _inputs(paths: list[str]) -> tuple[list[Path], str | None]:
    """Grid files to measure and the run's dataset (from its config.json) when a run folder is given."""
    files, data = [], None
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.glob("fakes*.png") if re.fullmatch(r"fakes\d+", f.stem))
            if (p / "config.json").is_file():
                data = data or json.loads((p / "config.json").read_text()).get("data")
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or run folder")
    if not files:
        raise FileNotFoundError(f"no fakesNNNNNN.png grids in {', '.join(paths)}")
    return files, data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("paths", nargs="+", help="run folders (their fakesNNNNNN.png) or grid PNGs")
    ap.add_argument("--data", help="training images (default: the run's, else builtin:twemoji/smileys)")
    ap.add_argument("--splits", type=int, default=2000, help="random splits for the references")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        files, run_data = _inputs(args.paths)
        from adagan.data import open_dataset

        ds = open_dataset(args.data or run_data or "builtin:twemoji/smileys")
        reals = np.stack([np.asarray(ds[i][0]) for i in range(len(ds))])  # [N, C, H, W]
        ds.close()
        if reals.shape[1] != 3:
            raise ValueError(f"the hue distance needs RGB training images, not {reals.shape[1]} channel(s)")
        res = reals.shape[2]
        real = cell_hues(reals.transpose(0, 2, 3, 1))
        rows = [(f, cell_hues(grid_cells(f, res))) for f in files]
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for f, hues in rows:
        print(f"{distance(hues, real):.3f}  {f}  ({len(hues)} coloured cells, off-hue {off_hue(hues, real):.1%})")
    ref = references(real, max(len(h) for _, h in rows), args.splits, args.seed)
    print(f"two halves of the {len(real)} coloured training images: median {ref['halves_median']:.3f}, "
          f"95th percentile {ref['halves_p95']:.3f}")
    print(f"a grid's worth drawn from them with replacement: median {ref['drawn_median']:.3f}, "
          f"95th percentile {ref['drawn_p95']:.3f}; off-hue {off_hue(real, real):.1%} of the training images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
