"""Network throughput: G forward (inference) and D forward+backward, images/s.

    python benchmarks/networks.py                 # CPU: cpu preset and auto@32
    python benchmarks/networks.py --device cuda   # adds auto@256 and paper256

Prints one line per configuration. Timings exclude a warm-up pass.
"""

from __future__ import annotations

import argparse
import time

import torch

from adagan import build_networks


def bench(fn, warmup: int, iters: int, device) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / iters


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    device = torch.device(args.device)
    configs = [("cpu", 32), ("auto", 32)]
    if device.type == "cuda":
        configs += [("auto", 256), ("paper256", 256)]
    print(f"device={device} threads={torch.get_num_threads()} batch={args.batch} torch={torch.__version__}")
    for preset, res in configs:
        G, D = build_networks(preset, res)
        G, D = G.to(device), D.to(device)
        z = torch.randn(args.batch, G.z_dim, device=device)
        G.eval()

        def g_fwd(G=G, z=z):
            with torch.no_grad():
                G(z, noise_mode="const")

        img = torch.randn(args.batch, 3, res, res, device=device)
        D.train().requires_grad_(True)

        def d_fwd_bwd(D=D, img=img):
            D(img).sum().backward()

        tg = bench(g_fwd, 1, args.iters, device)
        td = bench(d_fwd_bwd, 1, args.iters, device)
        nparams = lambda m: sum(p.numel() for p in m.parameters()) / 1e6
        print(f"{preset}@{res}: G {nparams(G):.2f}M params, G forward {args.batch / tg:8.1f} img/s | "
              f"D {nparams(D):.2f}M params, D forward+backward {args.batch / td:8.1f} img/s")


if __name__ == "__main__":
    main()
