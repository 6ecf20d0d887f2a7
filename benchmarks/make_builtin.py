"""Write a built-in network (`builtin:NAME`) from a training snapshot, and measure what float16 costs.

    python benchmarks/make_builtin.py runs/<run>/network-snapshot-NNNNNN.safetensors
    python benchmarks/make_builtin.py SNAPSHOT --out src/adagan/pretrained/twemoji32.safetensors --seeds 64

Stores the snapshot's G, D and G_ema in float16 (adagan.pretrained.export_builtin; the package data of
pyproject.toml ships src/adagan/pretrained/*.safetensors), then prints both files' sizes and how far the
float16 G_ema's images are from the snapshot's (max and mean absolute difference in [-1, 1] pixels, and the
largest difference in uint8 levels) over --seeds seeds, with the stored noise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from adagan import inference
from adagan.io import load_network
from adagan.pretrained import BUILTIN_DIR, export_builtin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("snapshot", type=Path, help="network-snapshot-*.safetensors holding G, D and G_ema")
    ap.add_argument("--out", type=Path, default=BUILTIN_DIR / "twemoji32.safetensors")
    ap.add_argument("--seeds", type=int, default=64, help="seeds compared (0..N-1)")
    args = ap.parse_args()
    out = export_builtin(args.snapshot, args.out)
    ref, half = load_network(args.snapshot), load_network(out)
    seeds = list(range(args.seeds))
    with torch.no_grad():
        a = inference.synthesize(ref, inference.seeds_to_ws(ref, seeds), noise_mode="const")
        b = inference.synthesize(half, inference.seeds_to_ws(half, seeds), noise_mode="const")
    levels = (inference.to_uint8(a).astype(int) - inference.to_uint8(b).astype(int))
    print(f"{args.snapshot}: {args.snapshot.stat().st_size / 1e6:.2f} MB -> {out}: {out.stat().st_size / 1e6:.2f} MB")
    print(f"G_ema images, float16 vs float32 over {len(seeds)} seeds: max |diff| {(a - b).abs().max():.4g}, "
          f"mean {(a - b).abs().mean():.3g} (of [-1, 1]); max {abs(levels).max()} uint8 levels")


if __name__ == "__main__":
    main()
