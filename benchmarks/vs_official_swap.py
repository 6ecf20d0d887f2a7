"""Which part of adagan's own training makes its ADA p differ from the official loop's? (issue 27)

    python benchmarks/vs_official_swap.py --official PATH --start SNAPSHOT
    python benchmarks/vs_official_swap.py --official PATH --start SNAP --p 0.23 --kimg 3 --seeds 0,1,2 --out swap.jsonl

The exact check (vs_official_training.py) feeds adagan the official loop's batches and augmentation draws,
so it cannot see a difference in how adagan draws them itself: its data sampler (epochs of permutations;
the official `InfiniteSampler` swaps each yielded index with one up to half the dataset back) and its
augmentation draws. This script holds p fixed, so that neither the controller nor a diverging trajectory
hides what a part does to D: from one snapshot (G, D, G_ema; Adam fresh) it trains adagan's loop on the
170 smileys (`cpu` preset, ADA mode `fixed`) for --kimg with

- `adagan`: everything adagan's own;
- `official-pipe`: the official `AugmentPipe` (bgc, from the checkout, patched for CPU in a temporary copy)
  in place of adagan's, drawing its own random numbers;
- `official-sampler`: the official sampler's order (`WindowSampler` below) in place of adagan's;

and reports r_t (the mean sign of D's output on augmented reals, ADA's overfitting heuristic) over the
last three quarters of the run. At equal p a higher r_t means a D that overfits more: ADA would raise p.
The same seed drives every configuration (latents, noise, draws), so the configurations are compared
seed by seed. To read an r_t difference as a p difference, the script also runs `adagan` at p - --delta
and p + --delta (the calibration): the slope dr_t/dp turns each part's r_t difference into the p
difference it would cause at the controller's equilibrium. Results are appended to --out (one JSON line
per run); a rerun skips the runs already there and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import official_cpu  # noqa: E402  (benchmarks/official_cpu.py)

DATA = "builtin:twemoji/smileys"
CONFIGS = ("adagan", "official-pipe", "official-sampler")


class WindowSampler:
    """The official training sampler's order (NVlabs' torch_utils/misc.py InfiniteSampler, written from its
    description): the dataset's indices shuffled once with numpy's RandomState(seed); after yielding position
    i, that position is swapped with one drawn uniformly from the `window` positions up to and including i
    (wrapping around), window = round(0.5 * size). Unlike adagan's epochs of permutations, an index can come
    twice within one pass and another not at all."""

    def __init__(self, size: int, seed: int = 0, window_size: float = 0.5):
        self.size, self.seed, self.window_size = int(size), int(seed), float(window_size)

    def __iter__(self):
        order = np.arange(self.size)
        rnd = np.random.RandomState(self.seed)
        rnd.shuffle(order)
        window = int(np.rint(order.size * self.window_size))
        idx = 0
        while True:
            i = idx % order.size
            yield int(order[i])
            if window >= 2:
                j = (i - rnd.randint(window)) % order.size
                order[i], order[j] = order[j], order[i]
            idx += 1


def run_one(args) -> dict:
    """One run of adagan's loop at fixed p with one configuration; returns its JSON line."""
    from adagan.config import resolve
    from adagan.data import open_dataset
    from adagan.training import stats
    from adagan.training.distributed import Context
    from adagan.training.session import setup
    from adagan.training.trainer import run_iteration

    torch.set_num_threads(args.threads)
    cfg = resolve("cpu", 32)
    cfg = replace(cfg, seed=args.seed, kimg=args.kimg, metrics=[],
                  augment=replace(cfg.augment, mode="fixed", p=args.p))
    ds = open_dataset(DATA, resolution=32, log=lambda msg: None)
    with tempfile.TemporaryDirectory(prefix="vs-official-swap-") as tmp:
        t, _ = setup(cfg, Context(), Path(tmp) / "run", ds, resume_weights=Path(args.start), log=lambda msg: None)
        if args.config == "official-pipe":
            off = official_cpu.import_loop(official_cpu.patched_copy(args.official, Path(tmp) / "official"))
            pipe = off.augment.AugmentPipe(**official_cpu.augment_multipliers(cfg.augment.augpipe))
            pipe.train().requires_grad_(False).p.copy_(torch.tensor(args.p))
            t.loss.augment_pipe = pipe
        elif args.config == "official-sampler":
            t.samples = iter(WindowSampler(len(ds), seed=args.seed))
        signs: list[tuple[float, int]] = []
        unsubscribe = stats.subscribe("Loss/signs/real", lambda s: signs.append((float(s.sum()), s.numel())))
        per_iter, start = [], time.time()
        try:
            for _ in range(max(1, int(args.kimg * 1000 / cfg.batch))):
                n0 = len(signs)
                run_iteration(t)
                total, count = (sum(x) for x in zip(*signs[n0:], strict=True))
                per_iter.append(total / count)
        finally:
            unsubscribe()
            t.close()
    kept = per_iter[len(per_iter) // 4:]
    return {"config": args.config, "p": args.p, "seed": args.seed, "kimg": args.kimg, "start": str(args.start),
            "r_t": sum(kept) / len(kept), "iterations": len(per_iter), "seconds": round(time.time() - start, 1)}


def plan(p: float, delta: float, seeds: list[int]) -> list[tuple[str, float, int]]:
    """(config, p, seed) of every run: the three configurations at p, then the calibration at p -/+ delta."""
    runs = [(c, p, s) for s in seeds for c in CONFIGS]
    if delta > 0:
        runs += [("adagan", round(p + d, 6), s) for s in seeds for d in (-delta, delta)]
    return runs


def summarise(rows: list[dict], p: float, delta: float) -> dict:
    """Per configuration: mean r_t at p and its seed-paired difference from `adagan`; the calibration's
    slope dr_t/dp; each difference as the p difference it would cause (difference / -slope)."""
    at = lambda c, q: {r["seed"]: r["r_t"] for r in rows if r["config"] == c and abs(r["p"] - q) < 1e-9}  # noqa: E731
    base = at("adagan", p)
    out: dict = {"p": p, "configs": {}}
    slopes = []
    lo, hi = at("adagan", p - delta), at("adagan", p + delta)
    for s in sorted(set(lo) & set(hi)):
        slopes.append((hi[s] - lo[s]) / (2 * delta))
    out["slope"] = sum(slopes) / len(slopes) if slopes else None
    for c in CONFIGS:
        r = at(c, p)
        paired = [r[s] - base[s] for s in sorted(set(r) & set(base))]
        diff = sum(paired) / len(paired) if paired and c != "adagan" else None
        out["configs"][c] = {
            "r_t": sum(r.values()) / len(r) if r else None, "seeds": len(r),
            "diff": diff, "diff_per_seed": paired if c != "adagan" else [],
            "as_p": (-diff / out["slope"]) if (diff is not None and out["slope"]) else None}
    return out


def _fmt(v, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def print_summary(summary: dict) -> None:
    print(f"r_t at fixed p = {summary['p']:g} (mean over seeds; difference from adagan's own, paired by seed)")
    print(f"{'configuration':18s} {'r_t':>6s} {'diff':>7s} {'per seed':28s} {'as a p difference':>18s}")
    for c, v in summary["configs"].items():
        per = " ".join(f"{d:+.3f}" for d in v["diff_per_seed"])
        print(f"{c:18s} {_fmt(v['r_t']):>6s} {_fmt(v['diff'], '+.3f'):>7s} {per:28s} {_fmt(v['as_p'], '+.3f'):>18s}")
    print(f"calibration: dr_t/dp = {_fmt(summary['slope'], '.2f')} (adagan at p -/+ delta)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--official", required=True, help="checkout of NVlabs/stylegan2-ada-pytorch")
    ap.add_argument("--start", required=True, help="network snapshot (G, D, G_ema) the runs start from")
    ap.add_argument("--p", type=float, default=0.23, help="the fixed augmentation probability (default 0.23)")
    ap.add_argument("--delta", type=float, default=0.05, help="calibration: also run adagan at p -/+ delta (0: skip)")
    ap.add_argument("--kimg", type=float, default=3.0, help="length of each run (default 3)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    ap.add_argument("--out", default="vs-official-swap.jsonl", help="JSON lines, appended (default %(default)s)")
    ap.add_argument("--one", choices=CONFIGS, help=argparse.SUPPRESS)  # one run, in a child process
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for path, what in ((args.official, "--official"), (args.start, "--start")):
        if not Path(path).exists():
            raise SystemExit(f"error: {what} {path} does not exist")
    if args.one:
        args.config = args.one
        print(json.dumps(run_one(args)), flush=True)
        return 0
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"error: --seeds {args.seeds!r}: give comma-separated integers, e.g. 0,1,2") from None
    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.is_file() else []
    rows = [r for r in rows if r.get("start") == str(args.start) and r.get("kimg") == args.kimg]
    done = {(r["config"], r["p"], r["seed"]) for r in rows}
    todo = [run for run in plan(args.p, args.delta, seeds) if run not in done]
    for k, (config, p, seed) in enumerate(todo, 1):
        print(f"[{k}/{len(todo)}] {config} p={p:g} seed {seed} ...", flush=True)
        cmd = [sys.executable, __file__, "--official", args.official, "--start", str(args.start), "--p", str(p),
               "--kimg", str(args.kimg), "--threads", str(args.threads), "--one", config, "--seed", str(seed)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.stderr.write(res.stderr)
            raise SystemExit(f"error: the {config} run (p={p:g}, seed {seed}) failed (above); rerun to continue")
        row = json.loads(res.stdout.strip().splitlines()[-1])
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)
        print(f"    r_t {row['r_t']:.3f} ({row['seconds']:.0f} s)", flush=True)
    print_summary(summarise(rows, args.p, args.delta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
