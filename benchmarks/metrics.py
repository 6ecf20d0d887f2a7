"""Metric speed: images/s of Inception feature extraction, and wall time of kid1k/fid1k on CPU.

    adagan weights fetch                       # the benchmark needs the real Inception network
    python benchmarks/metrics.py               # CPU (and CUDA when present)
    python benchmarks/metrics.py --threads 2   # what a 2-core machine sees

Rows: `inception` = uint8 32px images -> 2048-d features (resize to 299 included), batch 32 (CPU)
or 64 (CUDA); `kid1k`/`fid1k` = the whole metric as `adagan metrics` runs it, with the `cpu` preset
generator at 32 px (random weights: speed does not depend on training) on builtin:twemoji, once
kid1k first with an empty real-feature cache (`cold`: real + generated images), then fid1k with
it filled (`warm`: only the 1000 generated images go through Inception).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch


def bench_inception(device: str, batch: int, n: int) -> float:
    from adagan.metrics.features import load_inception

    det = load_inception(device)
    x = torch.randint(0, 256, [batch, 3, 32, 32], dtype=torch.uint8, device=device)
    with torch.no_grad():
        det(x)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        done = 0
        while done < n:
            det(x)
            done += batch
        if device == "cuda":
            torch.cuda.synchronize()
    return done / (time.perf_counter() - t0)


def bench_metric(name: str, device: str, subset: int | None) -> tuple[float, float, int]:
    """(seconds, value, real images) of one run of the metric as `adagan metrics` runs it."""
    from adagan import build_networks
    from adagan.data import open_dataset
    from adagan.metrics.evaluate import compute_metrics, parse_metrics

    torch.manual_seed(0)
    G, _ = build_networks("cpu", 32)
    G = G.eval().requires_grad_(False).to(device)
    ds = open_dataset("builtin:twemoji", resolution=32, subset=subset)
    t0 = time.perf_counter()
    res = compute_metrics(G, ds, parse_metrics(name), device=device, progress=False)
    return time.perf_counter() - t0, next(iter(res[name].values())), len(ds)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    ap.add_argument("--n", type=int, default=256, help="images for the Inception throughput rows")
    ap.add_argument("--skip-metrics", action="store_true", help="only the Inception throughput rows")
    ap.add_argument("--subset", type=int, default=None,
                    help="use this many real images of builtin:twemoji (default: all 4009)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # Fresh real-feature cache so `cold` really is cold (weights stay where they are).
    from adagan.metrics.weights import weights_dir

    os.environ.setdefault("ADAGAN_INCEPTION", str(weights_dir() / "inception-2015-12-05.pt"))
    os.environ["ADAGAN_CACHE"] = tempfile.mkdtemp(prefix="adagan-bench-")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"{os.cpu_count()} cores" + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        batch = 64 if dev == "cuda" else 32
        n = args.n * (8 if dev == "cuda" else 1)
        print(f"inception  {dev:<5s} batch {batch:<3d} {bench_inception(dev, batch, n):8.1f} img/s")
    if not args.skip_metrics:
        for dev in devices:  # kid1k fills the real-feature cache (cold); fid1k then reuses it (warm)
            for name, state in (("kid1k", "cold"), ("fid1k", "warm")):
                sec, value, n_real = bench_metric(name, dev, args.subset)
                print(f"{name:<10s} {dev:<5s} {state} cache, {n_real} real + 1000 generated: {sec:7.1f} s  "
                      f"(value {value:.4g})", flush=True)


if __name__ == "__main__":
    main()
