"""Augment pipe throughput: images/s of the ADA pipeline, forward and forward+backward.

    python benchmarks/augment.py                  # CPU: bgc at p=0.5 and p=1, batch 32, 32x32 and 64x64
    python benchmarks/augment.py --device cuda    # adds 256x256
    python benchmarks/augment.py --augpipe bgcfnc --p 0.2,0.6

Forward+backward takes the gradient with respect to the input images (as the discriminator's
loss does through the pipe). Timings exclude a warm-up pass; each configuration reports the
median over --iters runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from adagan.augment import AugmentPipe


def _time(fn, warmup: int, iters: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--augpipe", default="bgc")
    ap.add_argument("--p", default="0.5,1", help="comma-separated augmentation probabilities")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--resolutions", default=None, help="comma-separated; default 32,64 (+256 on CUDA)")
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()

    device = torch.device(args.device)
    resolutions = ([int(r) for r in args.resolutions.split(",")] if args.resolutions
                   else [32, 64] + ([256] if device.type == "cuda" else []))
    probs = [float(p) for p in args.p.split(",")]
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"augpipe={args.augpipe} batch={args.batch}")
    print(f"{'res':>5s} {'p':>5s} {'fwd img/s':>11s} {'fwd ms':>8s} {'fwd+bwd img/s':>14s} {'fwd+bwd ms':>11s}")
    torch.manual_seed(0)
    for res in resolutions:
        pipe = AugmentPipe(augpipe=args.augpipe).to(device)
        images = torch.rand(args.batch, 3, res, res, device=device) * 2 - 1
        for p in probs:
            pipe.p.fill_(p)

            def fwd(pipe=pipe, images=images):
                with torch.no_grad():
                    pipe(images)

            def fwd_bwd(pipe=pipe, images=images):
                x = images.detach().requires_grad_(True)
                pipe(x).square().sum().backward()

            t_f = _time(fwd, 2, args.iters, device)
            t_b = _time(fwd_bwd, 2, args.iters, device)
            print(f"{res:5d} {p:5.2f} {args.batch / t_f:11.0f} {t_f * 1e3:8.1f} {args.batch / t_b:14.0f} "
                  f"{t_b * 1e3:11.1f}", flush=True)


if __name__ == "__main__":
    main()
