"""`adagan studio` render latency as the page sees it: HTTP round trips to a real server.

    python benchmarks/studio.py                                   # cpu preset G at 32x32, 1 and 2 threads
    python benchmarks/studio.py --network runs/RUN/network-snapshot-000080.safetensors --threads 2

Starts `adagan studio` in a subprocess (one per thread count) and times, on a warm generator, what a
slider move asks for: a grid of 8 seeds and one image, each with a psi not asked before (so the PNG
cache never answers), plus the style-mixing table and the interpolation strip of two pinned seeds.
Prints the median and max round trip and the server's own render time (X-Render-Ms: synthesis +
PNG encoding). Without --network, a cpu-preset generator with random weights is used: the time does
not depend on the weights.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path


def cpu_preset_snapshot(folder: Path) -> Path:
    from adagan import build_networks
    from adagan.io import save_networks

    G, _ = build_networks("cpu", 32)
    path = folder / "network-snapshot-000000.safetensors"
    save_networks(path, G_ema=G)
    return path


def get(url: str) -> tuple[float, float]:
    """(round trip ms, server render ms)."""
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as resp:
        resp.read()
        server_ms = float(resp.headers.get("X-Render-Ms", "nan"))
    return (time.perf_counter() - t) * 1000, server_ms


def measure(network: Path, threads: int, repeats: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen([sys.executable, "-m", "adagan", "studio", str(network), "--port", "0", "--threads",
                             str(threads)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        base = line.split(" at ")[1].split()[0].split("#")[0]
        file = urllib.parse.quote(network.name)
        cold, _ = get(f"{base}api/network?file={file}")
        print(f"threads={threads}  first load of the generator (cold): {cold:.0f} ms")
        cases = {
            "grid of 8 seeds": "api/render/grid?file={f}&seeds=0-7&cols=8&psi={psi}",
            "one image": "api/render/grid?file={f}&seeds=0&psi={psi}",
            "style mix, 2 pinned (3x3)": "api/render/mix?file={f}&rows=1,5&cols=1,5&styles=0-3&psi={psi}",
            "strip, 2 pinned, 6 steps": "api/render/strip?file={f}&seeds=1,5&steps=6&psi={psi}",
        }
        for name, pattern in cases.items():
            get(base + pattern.format(f=file, psi="0.99"))  # warm-up
            trips, server = [], []
            for i in range(repeats):
                rt, sv = get(base + pattern.format(f=file, psi=f"{0.3 + 0.01 * i:.2f}"))
                trips.append(rt)
                server.append(sv)
            print(f"threads={threads}  {name:<28s} round trip median {statistics.median(trips):6.0f} ms  "
                  f"max {max(trips):6.0f} ms   server render median {statistics.median(server):6.0f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", type=Path, default=None, help="A network file (default: cpu preset, random).")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    import torch

    print(f"torch={torch.__version__} cpus={os.cpu_count()} load average={os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        network = args.network.resolve() if args.network else cpu_preset_snapshot(Path(tmp))
        for threads in args.threads:
            measure(network, threads, args.repeats)
    print(f"load average after={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
