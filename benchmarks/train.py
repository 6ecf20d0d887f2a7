"""Training speed: seconds per kimg and peak memory of real `adagan train` runs.

    python benchmarks/train.py                        # CPU: cpu preset and auto at 32/64 px (Twemoji)
    python benchmarks/train.py --device cuda --data ffhq256.zip --configs paper256:64,auto:

Each configuration trains for --kimg in a temporary directory (first tick excluded as
warm-up when there are several) and reports sec/kimg and peak RAM / GPU memory from the
run's stats.jsonl, plus milliseconds and images/s per training phase (Gmain, Greg, Dmain, Dreg, or
Gboth/Dboth where a regularizer is not lazy; Dmain and Dboth count the fakes and the reals).
Format of --configs: CFG[@RES][:BATCH], comma-separated.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def run(cfg: str, res: int | None, batch: int | None, kimg: float, data: str | None, device: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "adagan", "train", "--cfg", cfg, "--outdir", tmp, "--name", "bench",
               "--kimg", str(kimg), "--tick", str(kimg / 3), "--snap", "1000", "--device", device,
               "--augment.ada_kimg=100"]
        if data:
            cmd += ["--data", data]
        if res:
            cmd += ["--resolution", str(res)]
        if batch:
            cmd += ["--batch", str(batch)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rows = [json.loads(x) for x in (Path(tmp) / "bench" / "stats.jsonl").read_text().splitlines()]
        cfg_json = json.loads((Path(tmp) / "bench" / "config.json").read_text())
    timed = rows[1:] or rows
    sec_per_kimg = sum(r["Timing/sec_per_kimg"] for r in timed) / len(timed)
    # Per phase: mean ms per call (lazy phases run in few ticks, so average over every tick that has them),
    # images per second through that phase, and its share of the iteration (ms / interval).
    batch, loss = cfg_json["batch"], cfg_json["loss"]
    # A regularizer without an interval (None: not lazy) runs inside Gboth/Dboth every iteration.
    phases = {"Gmain": (batch, 1), "Gboth": (batch, 1),
              "Greg": (max(batch // loss["pl_batch_shrink"], 1), loss["pl_interval"] or 1),
              "Dmain": (2 * batch, 1), "Dboth": (2 * batch, 1), "Dreg": (batch, loss["r1_interval"] or 1)}
    phase_rows = {}
    for name, (images, interval) in phases.items():
        values = [r[f"Timing/{name}_ms"] for r in rows if f"Timing/{name}_ms" in r]
        if values:
            ms = sum(values) / len(values)
            phase_rows[name] = {"ms": ms, "img_per_s": images / ms * 1000, "ms_per_iter": ms / interval}
    return {"sec_per_kimg": sec_per_kimg, "img_per_s": 1000 / sec_per_kimg, "phases": phase_rows,
            "peak_ram_gb": max(r.get("Resources/peak_ram_gb", 0) for r in rows),
            "peak_gpu_gb": max(r.get("Resources/peak_gpu_mem_gb", 0) for r in rows)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default=None, help="dataset (default: built-in Twemoji)")
    ap.add_argument("--configs", default="cpu@32,auto@32,auto@64")
    ap.add_argument("--kimg", type=float, default=0.384)
    args = ap.parse_args()
    print(f"device={args.device} kimg={args.kimg}")
    for item in args.configs.split(","):
        spec, _, batch = item.partition(":")
        cfg, _, res = spec.partition("@")
        r = run(cfg, int(res) if res else None, int(batch) if batch else None, args.kimg, args.data, args.device)
        print(f"{item:<16s} {r['sec_per_kimg']:9.1f} sec/kimg  {r['img_per_s']:7.1f} img/s  "
              f"peak RAM {r['peak_ram_gb']:.2f} GB  peak GPU {r['peak_gpu_gb']:.2f} GB", flush=True)
        total = sum(p["ms_per_iter"] for p in r["phases"].values()) or 1.0
        for name, p in r["phases"].items():
            print(f"    {name:<6s} {p['ms']:8.1f} ms/call  {p['img_per_s']:8.1f} img/s  "
                  f"{100 * p['ms_per_iter'] / total:5.1f}% of phase time", flush=True)


if __name__ == "__main__":
    main()
