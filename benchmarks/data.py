"""Data loading speed: images/s of `ImageDataset.get_batch` at 32, 64 and 256 px, and of the dataset tool.

    python benchmarks/data.py                         # synthetic photo-like data, all CPU threads
    python benchmarks/data.py --threads 2 --batch 32  # what a 2-core training machine sees
    python benchmarks/data.py --data mydata.zip       # your own dataset zip (loader only)

Loader rows: `cold` decodes every batch from the zip (cache off: what a dataset larger than the
1 GiB cache costs), `warm` reads the in-memory cache that small datasets use after the first epoch.
Indices come from InfiniteSampler, i.e. random access as in training. `tool` is `adagan dataset`
converting JPEG photos (640x480) to the given resolution. PNG decoding uses pyspng when installed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from adagan.data import ImageDataset, InfiniteSampler, prepare_dataset
from adagan.data.images import have_pyspng


def photo_like(h: int, w: int, rng: np.random.RandomState) -> np.ndarray:
    """Smooth colour blobs plus fine noise: compresses like a photo, not like noise or flat colour."""
    low = rng.rand(max(h // 16, 2), max(w // 16, 2), 3) * 255
    big = Image.fromarray(low.astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    img = np.asarray(big, np.float32)
    img += rng.randn(h, w, 3) * 6
    return np.clip(img, 0, 255).astype(np.uint8)


def make_jpeg_folder(root: Path, n: int, size=(480, 640)) -> Path:
    rng = np.random.RandomState(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(photo_like(*size, rng)).save(root / f"{i:05d}.jpg", quality=90)
    return root


def bench_loader(path: Path, batch: int, seconds: float, cache: bool, workers: int) -> float:
    ds = ImageDataset(path, cache=cache, workers=workers)
    if cache:
        ds.preload()
    it = iter(InfiniteSampler(len(ds), seed=0))
    ds.get_batch([next(it) for _ in range(batch)])  # warm-up (thread pool, file handles)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        imgs, _ = ds.get_batch([next(it) for _ in range(batch)])
        n += imgs.shape[0]
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolutions", default="32,64,256")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="decode/torch threads (default: all)")
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    ap.add_argument("--images", type=int, default=400, help="JPEGs converted per resolution")
    ap.add_argument("--data", default=None, help="benchmark this dataset zip instead (loader only)")
    args = ap.parse_args()
    threads = args.threads or min(os.cpu_count() or 1, 8)
    torch.set_num_threads(threads)
    print(f"cpu threads {threads}, batch {args.batch}, pyspng {'yes' if have_pyspng() else 'no'}")
    if args.data:
        for cache in (False, True):
            r = bench_loader(Path(args.data), args.batch, args.seconds, cache, threads)
            print(f"{args.data}  {'warm' if cache else 'cold'}  {r:10,.0f} img/s", flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        jpegs = make_jpeg_folder(Path(tmp) / "jpegs", args.images)
        print(f"{'res':>5} {'tool (JPEG->zip)':>18} {'loader cold':>14} {'loader warm':>14}")
        for res in (int(r) for r in args.resolutions.split(",")):
            dest = Path(tmp) / f"d{res}.zip"
            t0 = time.perf_counter()
            prepare_dataset(jpegs, dest, resolution=res, workers=threads)
            tool = args.images / (time.perf_counter() - t0)
            cold = bench_loader(dest, args.batch, args.seconds, False, threads)
            warm = bench_loader(dest, args.batch, args.seconds, True, threads)
            print(f"{res:>5} {tool:>12,.0f} img/s {cold:>8,.0f} img/s {warm:>8,.0f} img/s", flush=True)


if __name__ == "__main__":
    main()
