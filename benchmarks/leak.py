"""The leak measure on real images: the reals, their x-flips, and the reals through ADA's augment pipe at p.

    python benchmarks/leak.py                                   # builtin:twemoji/smileys at 32 px, bgc
    python benchmarks/leak.py --data builtin:twemoji --p 0.1,0.5,1 --augpipe bgc --splits 10

Each split divides the dataset at random into two halves: the reference half plays the reals, the other
half (the query) plays the generated images, as it is, x-flipped, or augmented at each p (a fresh draw of
the pipe per split). The reference and the query never share an image, so the "reals" row is what a
generator that samples the reals' distribution scores. Printed: the mean over splits of every component
and of the colour / geometry / headline scores (adagan/metrics/leak.py), with the headline's standard
deviation over splits; the table in docs/metrics.md comes from this script.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from adagan.augment import AugmentPipe
from adagan.data import open_dataset
from adagan.metrics.leak import COMPONENTS, image_stats, leak_scores
from adagan.ops.image import to_uint8

COLUMNS = [n for names in COMPONENTS.values() for n in names] + ["colour", "geometry", "leak"]


def load_reals(data: str, resolution: int | None) -> torch.Tensor:
    """All images of `data`, uint8 [N, C, H, W]."""
    ds = open_dataset(data, resolution=resolution, mirror=False)
    try:
        return ds.get_batch(list(range(len(ds))))[0]
    finally:
        ds.close()


def augmented(images: torch.Tensor, augpipe: str, p: float, seed: int) -> torch.Tensor:
    """uint8 images through AugmentPipe(augpipe) at probability p (one draw, seeded)."""
    pipe = AugmentPipe(augpipe)
    pipe.p.fill_(p)
    torch.manual_seed(seed)
    with torch.no_grad():
        return to_uint8(pipe(images.float() / 127.5 - 1))


def rows_for_split(reals: torch.Tensor, ps: list[float], augpipe: str, split: int) -> dict[str, dict]:
    """{row label: leak_scores} for one random split of the reals into a reference and a query half."""
    perm = np.random.default_rng(split).permutation(len(reals))
    ref_idx, query_idx = perm[: len(reals) // 2], perm[len(reals) // 2:]
    ref = image_stats(reals[ref_idx])
    query = reals[query_idx]
    queries = {"reals": query, "reals x-flipped": query.flip(3)}
    for p in ps:
        queries[f"{augpipe} p={p:g}"] = augmented(query, augpipe, p, seed=1000 * split + round(100 * p))
    return {label: leak_scores(image_stats(q), ref, seed=split) for label, q in queries.items()}


def table(results: list[dict[str, dict]]) -> str:
    """A markdown table of the mean over splits (headline: mean +- std)."""
    lines = ["| images | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for label in results[0]:
        cells = []
        for c in COLUMNS:
            v = np.array([r[label][c] for r in results])
            cells.append(f"**{v.mean():.3f}** ± {v.std():.3f}" if c == "leak" else f"{v.mean():.3f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="builtin:twemoji/smileys")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--augpipe", default="bgc")
    ap.add_argument("--p", default="0.2,0.4,0.6,0.8,1.0", help="comma-separated augmentation probabilities")
    ap.add_argument("--splits", type=int, default=20, help="random reference/query splits to average over")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    reals = load_reals(args.data, args.resolution)
    ps = [float(p) for p in args.p.split(",") if p.strip()]
    results = [rows_for_split(reals, ps, args.augpipe, s) for s in range(args.splits)]
    n = len(reals)
    print(f"{args.data} at {args.resolution} px: {n} images; reference {n // 2} vs query {n - n // 2}, "
          f"mean over {args.splits} random splits (leak: mean ± std)\n")
    print(table(results))


if __name__ == "__main__":
    main()
