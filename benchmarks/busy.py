"""Training speed alone and beside a second CPU-bound training run, with a fixed or an adaptive thread count.

    python benchmarks/busy.py --kimg 2 --rounds 2

For each thread setting (default: `--threads 2`, i.e. all cores as PyTorch does by default, and the
adaptive default), it times `adagan train` (cpu preset, builtin:twemoji/smileys) alone and then two
identical runs started together, alternating the settings round by round. Prints sec/kimg (the mean
of each run's ticks after its first) and the ratio pair / alone: the share of its idle speed a run
keeps on a busy machine. OMP_NUM_THREADS is removed from the children's environment, so the adaptive
setting really adapts. Every run goes to a fresh temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train_cmd(outdir: Path, name: str, kimg: float, threads: str) -> list[str]:
    cmd = [sys.executable, "-m", "adagan", "train", "--data", "builtin:twemoji/smileys", "--outdir", str(outdir),
           "--name", name, "--kimg", f"{kimg:g}", "--tick", "0.5", "--snap", "0", "--cfg", "cpu"]
    return cmd + (["--threads", threads] if threads != "auto" else [])


def sec_per_kimg(run_dir: Path) -> float:
    ticks = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    vals = [t["Timing/sec_per_kimg"] for t in ticks[1:]] or [ticks[-1]["Timing/sec_per_kimg"]]
    return statistics.mean(vals)


def run(n: int, kimg: float, threads: str) -> list[float]:
    """Start n identical runs together; their sec/kimg."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    with tempfile.TemporaryDirectory() as tmp:
        procs = [subprocess.Popen(train_cmd(Path(tmp), f"r{i}", kimg, threads), env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for i in range(n)]
        for p in procs:
            _, err = p.communicate()
            if p.returncode:
                raise SystemExit(f"adagan train failed:\n{err}")
        return [sec_per_kimg(Path(tmp) / f"r{i}") for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kimg", type=float, default=2.0, help="training length of each run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--settings", default="2,auto", help="comma-separated --threads values; 'auto' = adaptive")
    args = ap.parse_args()
    settings = [s.strip() for s in args.settings.split(",")]
    alone: dict[str, list[float]] = {s: [] for s in settings}
    pair: dict[str, list[float]] = {s: [] for s in settings}
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores", flush=True)
    for r in range(args.rounds):
        for s in settings:
            t0 = time.time()
            alone[s] += run(1, args.kimg, s)
            pair[s] += run(2, args.kimg, s)
            print(f"round {r + 1} threads={s}: alone {alone[s][-1]:.1f}, pair {pair[s][-2]:.1f} / {pair[s][-1]:.1f} "
                  f"sec/kimg ({time.time() - t0:.0f} s)", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print("\n| threads | alone sec/kimg | beside a second run, sec/kimg | kept share of idle speed |")
    print("| --- | --- | --- | --- |")
    for s in settings:
        a, b = statistics.median(alone[s]), statistics.median(pair[s])
        print(f"| {s} | {a:.1f} | {b:.1f} | {a / b:.2f} |")


if __name__ == "__main__":
    main()
