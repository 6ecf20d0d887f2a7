"""Augment pipe throughput: images/s of the ADA pipeline, forward and forward+backward.

    python benchmarks/augment.py                  # bgc at p=0.5 and p=1: 32x32 and 64x64 at batch 32,
                                                  # 256x256 and 1024x1024 at batch 4
    python benchmarks/augment.py --resample both  # the geometric resampling as matrix products vs convolutions
    python benchmarks/augment.py --augpipe bgcfnc --p 0.2,0.6
    git show main:src/adagan/augment/pipeline.py > /tmp/old_pipeline.py
    python benchmarks/augment.py --baseline /tmp/old_pipeline.py   # old vs new, interleaved

Forward+backward takes the gradient with respect to the input images (as the discriminator's
loss does through the pipe). Timings exclude a warm-up pass; each configuration reports the
median over --iters runs. With --baseline, a second version of the pipeline module is timed on the
same images, alternating with this one run by run, so both see the same machine load. With
--resample both, this pipeline is timed twice, interleaved in the same way: rows 'mm' with the 2x up- and
downsampling of `resample` as matrix products at every size, rows 'conv' as convolutions
(pipeline.RESAMPLE_MATMUL_MAX picks between them by size otherwise).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import torch

import adagan.augment.pipeline as pipeline
from adagan.augment import AugmentPipe


def _time(fns, warmup: int, iters: int, device: torch.device) -> list[float]:
    """Median seconds of each function in `fns`, timed in turn within every iteration."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(iters):
        for fn, ts in zip(fns, times, strict=True):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def _load_pipe_class(path: str):
    """AugmentPipe from another copy of src/adagan/augment/pipeline.py (e.g. an older revision)."""
    spec = importlib.util.spec_from_file_location("baseline_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.AugmentPipe


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--augpipe", default="bgc")
    ap.add_argument("--p", default="0.5,1", help="comma-separated augmentation probabilities")
    ap.add_argument("--batch", type=int, default=32, help="batch below 256 px")
    ap.add_argument("--batch-large", type=int, default=4, help="batch at 256 px and above")
    ap.add_argument("--resolutions", default="32,64,256,1024", help="comma-separated")
    ap.add_argument("--resample", choices=["auto", "both"], default="auto",
                    help="'both': time matrix-product and convolution resampling side by side (rows mm, conv)")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--baseline", default=None,
                    help="another version of src/adagan/augment/pipeline.py to time alongside (rows 'base')")
    args = ap.parse_args()

    device = torch.device(args.device)
    resolutions = [int(r) for r in args.resolutions.split(",")]
    probs = [float(p) for p in args.p.split(",")]
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"augpipe={args.augpipe} batch={args.batch} (>= 256 px: {args.batch_large})")
    # (name, pipe class, RESAMPLE_MATMUL_MAX while it runs; None = as the module sets it)
    versions = [("this", AugmentPipe, None)]
    if args.resample == "both":
        versions = [("mm", AugmentPipe, 1 << 30), ("conv", AugmentPipe, 0)]
    if args.baseline:
        versions.append(("base", _load_pipe_class(args.baseline), None))
    print(f"{'res':>5s} {'batch':>5s} {'p':>5s} {'code':>5s} {'fwd img/s':>11s} {'fwd ms':>8s} {'fwd+bwd img/s':>14s} "
          f"{'fwd+bwd ms':>11s}")
    torch.manual_seed(0)
    default_max = pipeline.RESAMPLE_MATMUL_MAX

    def with_resample(fn, limit):
        def run():
            pipeline.RESAMPLE_MATMUL_MAX = default_max if limit is None else limit
            try:
                fn()
            finally:
                pipeline.RESAMPLE_MATMUL_MAX = default_max
        return run

    for res in resolutions:
        batch = args.batch if res < 256 else args.batch_large
        pipes = [cls(augpipe=args.augpipe).to(device) for _, cls, _ in versions]
        images = torch.rand(batch, 3, res, res, device=device) * 2 - 1
        for p in probs:
            fwds, fwd_bwds = [], []
            for pipe, (_, _, limit) in zip(pipes, versions, strict=True):
                pipe.p.fill_(p)

                def fwd(pipe=pipe, images=images):
                    with torch.no_grad():
                        pipe(images)

                def fwd_bwd(pipe=pipe, images=images):
                    x = images.detach().requires_grad_(True)
                    pipe(x).square().sum().backward()

                fwds.append(with_resample(fwd, limit))
                fwd_bwds.append(with_resample(fwd_bwd, limit))
            t_f = _time(fwds, 2, args.iters, device)
            t_b = _time(fwd_bwds, 2, args.iters, device)
            for (name, _, _), tf, tb in zip(versions, t_f, t_b, strict=True):
                print(f"{res:5d} {batch:5d} {p:5.2f} {name:>5s} {batch / tf:11.1f} {tf * 1e3:8.1f} {batch / tb:14.1f} "
                      f"{tb * 1e3:11.1f}", flush=True)


if __name__ == "__main__":
    main()
