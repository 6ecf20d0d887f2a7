"""Statistical mode of benchmarks/vs_official_training.py: whole runs of both loops, side by side (issue 27).

One loop and one seed per process, so two can run beside each other (OMP_NUM_THREADS=1 each):

    python benchmarks/vs_official_training.py --official PATH --which official --seed 1 --kimg 60 --out runs/vs
    python benchmarks/vs_official_training.py --official PATH --which adagan --seed 1 --kimg 60 --out runs/vs
    python benchmarks/vs_official_training.py --official PATH --report --out runs/vs [--metrics leak1k,kid1k@30]
    python benchmarks/vs_official_training.py --official PATH --which official --seed 0 --ada-kimg 500 --out runs/vs

Both train the `cpu` preset (src/adagan/config.py) on the 170 images of builtin:twemoji/smileys at 32 px,
with a tick every kimg and a network snapshot and grid every 10 ticks.
  official  NVIDIA's training_loop.training_loop, in this process, from a temporary copy of the checkout
            patched for CPU (benchmarks/official_cpu.py), with the keyword arguments the official train.py
            would pass; the images are a folder of PNGs exported once to OUT/smileys (the same images in
            the same order). It writes its own run directory OUT/official-seedS (log, stats.jsonl, fakes
            grids, network-snapshot-*.pkl). The official loop cannot resume (it restarts its optimizers and
            counters), so an unfinished official run directory is moved aside and the run restarts.
  adagan    `adagan train --data builtin:twemoji/smileys --kimg K --seed S --tick 1 --snap 10` into
            OUT/adagan-seedS, in a subprocess; rerunning the command resumes it exactly.
  --ada-kimg A  either loop with ADA's speed A instead of the preset's 20 (the paper's value is 500), into
            OUT/{official,adagan}-adakimgA-seedS; `--report --ada-kimg A` reports those runs.
  report    reads both runs' stats.jsonl, prints r_t and p (each the mean over the 10 kimg up to 10, 20,
            ... kimg), computes --metrics (default
            leak1k,kid1k@30: NAME@N only every N kimg, Inception costs minutes per snapshot on a CPU) with
            adagan's metrics on the snapshots
            (the official pickles imported with `adagan import-official` first), and writes OUT/report[-adakimgA]/
            (report.md, report.json, grid-KKK.png: the official G_ema left, adagan's right, same latents).
            report.md ends with a summary per seed (r_t, p: mean of the last 30 kimg; metrics: the last
            value) that marks a statistic whose two loops' seed ranges do not overlap.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import official_cpu

DATA = "builtin:twemoji/smileys"
GRID_SEED, GRID_N = 123, 64


def _cfg(seed: int, kimg: float, ada_kimg: float | None = None):
    from adagan.config import resolve

    cfg = replace(resolve("cpu", 32), seed=seed, kimg=kimg, metrics=[], max_minutes=None, tick_kimg=1.0,
                  snap_ticks=10)
    return cfg if ada_kimg is None else replace(cfg, augment=replace(cfg.augment, ada_kimg=ada_kimg))


def _prefix(ada_kimg: float | None) -> str:
    """Run folders are OUT/{official,adagan}-seedS, or OUT/{official,adagan}-adakimgA-seedS with --ada-kimg A."""
    return "" if ada_kimg is None else f"adakimg{ada_kimg:g}-"


def _run_dir(out: Path, which: str, seed: int, ada_kimg: float | None) -> Path:
    return out / f"{which}-{_prefix(ada_kimg)}seed{seed}"


def _snapshots(run_dir: Path, ext: str) -> dict[int, Path]:
    """kimg (from the file name) -> snapshot file."""
    out = {}
    for p in run_dir.glob(f"network-snapshot-*.{ext}"):
        try:
            out[int(p.stem.rsplit("-", 1)[1])] = p
        except ValueError:
            continue
    return out


def run_official(args) -> int:
    out = Path(args.out)
    run_dir = _run_dir(out, "official", args.seed, args.ada_kimg)
    done = _snapshots(run_dir, "pkl")
    if done and max(done) >= math.floor(args.kimg):
        print(f"{run_dir} is complete ({max(done)} kimg)")
        return 0
    if run_dir.exists():  # the official loop cannot resume: start over, keeping the old one for reference
        aside = run_dir.with_name(f"{run_dir.name}.restarted-{time.strftime('%Y%m%d-%H%M%S')}")
        run_dir.rename(aside)
        print(f"moved the unfinished {run_dir} to {aside}; the official loop restarts from 0")
    data_dir = out / "smileys"
    if not data_dir.is_dir():
        tmp_data = out / "smileys.partial"
        shutil.rmtree(tmp_data, ignore_errors=True)
        official_cpu.export_folder(DATA, 32, tmp_data)
        tmp_data.rename(data_dir)
    run_dir.mkdir(parents=True)
    torch.set_num_threads(args.threads)
    cfg = _cfg(args.seed, args.kimg, args.ada_kimg)
    with tempfile.TemporaryDirectory(prefix="official-cpu-") as tmp:
        off = official_cpu.import_loop(official_cpu.patched_copy(args.official, Path(tmp) / "official"))
        official_cpu.deterministic_summary(off)
        kw = official_cpu.loop_kwargs(cfg, str(data_dir), str(run_dir), total_kimg=args.kimg, snap_ticks=10,
                                      image_ticks=10)
        (run_dir / "loop_kwargs.json").write_text(json.dumps(kw, indent=1))
        off.training_loop.training_loop(**kw)
    return 0


def run_adagan(args) -> int:
    cmd = [sys.executable, "-m", "adagan.cli.main", "train", "--data", DATA, "--cfg", "cpu", "--kimg", str(args.kimg),
           "--seed", str(args.seed), "--tick", "1", "--snap", "10", "--outdir", str(args.out),
           "--name", _run_dir(Path(args.out), "adagan", args.seed, args.ada_kimg).name, "--device", "cpu"]
    if args.ada_kimg is not None:
        cmd.append(f"--augment.ada_kimg={args.ada_kimg:g}")
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd)


def _mean(rec: dict, key: str):
    """The official stats.jsonl keeps {num, mean, std} per statistic and tick."""
    v = rec.get(key)
    return v.get("mean") if isinstance(v, dict) else None


def _official_stats(run_dir: Path) -> list[dict]:
    rows = []
    for line in (run_dir / "stats.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rows.append({"kimg": _mean(rec, "Progress/kimg"), "r_t": _mean(rec, "Loss/signs/real"),
                     "p": _mean(rec, "Progress/augment")})
    return rows


def _adagan_stats(run_dir: Path) -> list[dict]:
    rows = []
    for line in (run_dir / "stats.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "Progress/kimg" in rec:
            rows.append({"kimg": rec["Progress/kimg"], "r_t": rec.get("Progress/r_t"),
                         "p": rec.get("Progress/augment")})
    return rows


def _window(rows: list[dict], lo: float, hi: float) -> dict:
    """Mean r_t and p over the ticks that end in (lo, hi]: one tick's value moves by several ADA steps."""
    sel = [r for r in rows if r["kimg"] is not None and lo < r["kimg"] <= hi + 0.25]
    mean = lambda k: (sum(r[k] for r in sel) / len(sel)) if sel and all(r[k] is not None for r in sel) else None  # noqa: E731
    return {"r_t": mean("r_t"), "p": mean("p")}


def _nearest(snaps: dict[int, Path], kimg: int) -> Path | None:
    k = min(snaps, key=lambda s: abs(s - kimg), default=None)
    return snaps[k] if k is not None and abs(k - kimg) <= 2 else None


def _imported(pkl: Path) -> Path:
    """The official snapshot converted by adagan's importer (cached next to it)."""
    from adagan.official import import_official

    dest = pkl.with_suffix(".imported.safetensors")
    if not dest.is_file():
        import_official(pkl, dest)
    return dest


def _metrics(path: Path, names: list[str], cache: dict) -> dict:
    """adagan's metrics of one snapshot against the smileys, cached per snapshot and metric."""
    from adagan.io import load_network
    from adagan.metrics.evaluate import evaluate_snapshot

    todo = [m for m in names if f"{path}:{m}" not in cache]
    if todo:
        G = load_network(path, "G_ema")
        res = evaluate_snapshot(None, G, metrics=todo, data=DATA, resolution=32, device="cpu", progress=False)
        for m in todo:
            cache[f"{path}:{m}"] = {k: v for k, v in res.items() if k == m or k.startswith(m + "_")}
    return {k: v for m in names for k, v in cache[f"{path}:{m}"].items()}


def _metric_plan(spec: str) -> list[tuple[str, int | None]]:
    """--metrics "leak1k,kid1k@60" -> [("leak1k", None), ("kid1k", 60)]: NAME@N only at multiples of N kimg."""
    plan = []
    for item in (m.strip() for m in spec.split(",")):
        if not item or item == "none":
            continue
        name, _, every = item.partition("@")
        if every and not (every.isdigit() and int(every) > 0):
            raise official_cpu.UsageError(f"--metrics {item!r}: write NAME or NAME@N with N a positive kimg count")
        plan.append((name, int(every) if every else None))
    return plan


def _grid(paths: list[Path | None], dest: Path) -> None:
    """Official G_ema's 8x8 grid beside adagan's, from the same latents (const noise)."""
    from PIL import Image

    from adagan.io import load_network
    from adagan.ops.image import make_grid, to_uint8

    z = torch.randn([GRID_N, 128], generator=torch.Generator().manual_seed(GRID_SEED))
    grids = []
    for p in paths:
        if p is None:
            grids.append(np.zeros([8 * 33 + 1, 8 * 33 + 1, 3], np.uint8))
            continue
        G = load_network(p, "G_ema").eval()
        with torch.no_grad():
            img = to_uint8(G(z, None, noise_mode="const")).permute(0, 2, 3, 1).numpy()
        grids.append(make_grid(img, 8, pad=1))
    gap = np.full([grids[0].shape[0], 8, 3], 255, np.uint8)
    Image.fromarray(np.concatenate([grids[0], gap, grids[1]], axis=1)).save(dest)


def report(args) -> int:
    out = Path(args.out)
    prefix = _prefix(args.ada_kimg)
    seeds = sorted({int(p.name.rsplit("seed", 1)[1]) for w in ("official", "adagan")
                    for p in out.glob(f"{w}-{prefix}seed*") if p.is_dir() and p.name.rsplit("seed", 1)[1].isdigit()})
    if not seeds:
        raise official_cpu.UsageError(f"--report: no official-{prefix}seedS / adagan-{prefix}seedS runs in {out}")
    plan = _metric_plan(args.metrics)
    rep_dir = out / f"report{'-' + prefix.rstrip('-') if prefix else ''}"
    rep_dir.mkdir(parents=True, exist_ok=True)
    cache_file = rep_dir / "metrics-cache.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    table = []
    for seed in seeds:
        o_dir, a_dir = (_run_dir(out, w, seed, args.ada_kimg) for w in ("official", "adagan"))
        o_rows = _official_stats(o_dir) if (o_dir / "stats.jsonl").is_file() else []
        a_rows = _adagan_stats(a_dir) if (a_dir / "stats.jsonl").is_file() else []
        o_snaps, a_snaps = _snapshots(o_dir, "pkl"), _snapshots(a_dir, "safetensors")
        for k in range(args.every, int(args.kimg) + 1, args.every):
            row = {"seed": seed, "kimg": k}
            for side, rows in (("official", o_rows), ("adagan", a_rows)):
                w = _window(rows, k - args.every, k)
                row[f"{side}_r_t"], row[f"{side}_p"] = w["r_t"], w["p"]
            o_snap, a_snap = _nearest(o_snaps, k), _nearest(a_snaps, k)
            o_net = _imported(o_snap) if o_snap else None
            names = [m for m, every in plan if every is None or k % every == 0]
            for side, net in (("official", o_net), ("adagan", a_snap)):
                for m, v in (_metrics(net, names, cache).items() if (net and names) else []):
                    row[f"{side}_{m}"] = v
            cache_file.write_text(json.dumps(cache, indent=1))
            if o_net or a_snap:
                _grid([o_net, a_snap], rep_dir / f"grid-seed{seed}-{k:03d}.png")
            table.append(row)
    return _write_table(table, rep_dir, args.every)


# report.md shows the leak measure's total and its hue, colour and geometry parts; report.json keeps them all
_SHOWN_LEAK = re.compile(r"leak\d+k(_hue|_colour|_geometry)?")


def _shown(stat: str) -> bool:
    """A statistic of report.md's tables ('r_t', 'kid1k', 'leak1k_hue', ...; not 'leak1k_sat')."""
    return not stat.startswith("leak") or _SHOWN_LEAK.fullmatch(stat) is not None


def summarise(table: list[dict], last: int) -> list[dict]:
    """Per loop and statistic: each seed's value (r_t and p: mean over the rows of the last `last` kimg; a
    metric: its value at the last row that has it), their mean, whether the two loops' seed ranges are
    apart (the difference is then beyond the seed spread) and the exact permutation test's p-value of the
    difference in means (`permutation_p`)."""
    seeds = sorted({r["seed"] for r in table})
    stats = sorted({c.split("_", 1)[1] for r in table for c in r if c not in ("seed", "kimg")},
                   key=lambda m: (m not in ("r_t", "p"), m))
    out = []
    for m in stats:
        per = {}
        for side in ("official", "adagan"):
            vals = []
            for seed in seeds:
                rows = [r for r in table if r["seed"] == seed and r.get(f"{side}_{m}") is not None]
                if m in ("r_t", "p"):
                    end = max((r["kimg"] for r in rows), default=0)
                    rows = [r for r in rows if r["kimg"] > end - last]
                    vals.append(sum(r[f"{side}_{m}"] for r in rows) / len(rows) if rows else None)
                else:
                    vals.append(rows[-1][f"{side}_{m}"] if rows else None)
            per[side] = vals
        o, a = ([v for v in per[s] if v is not None] for s in ("official", "adagan"))
        apart = bool(o and a and len(o) > 1 and len(a) > 1 and (max(o) < min(a) or max(a) < min(o)))
        out.append({"stat": m, "official": per["official"], "adagan": per["adagan"],
                    "official_mean": sum(o) / len(o) if o else None, "adagan_mean": sum(a) / len(a) if a else None,
                    "beyond_seed_spread": apart, "permutation_p": permutation_p(o, a)})
    return out


def permutation_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided exact permutation test of mean(a) - mean(b): the share of the C(n_a + n_b, n_a) ways to
    split the pooled values into groups of n_a and n_b whose mean difference is at least as large in size
    (the observed split included). With 3 seeds a side the smallest possible value is 2/20 = 0.1: ranges
    that do not overlap are then not yet a difference at the 5% level; 5 a side can reach 2/252 = 0.008."""
    if len(a) < 2 or len(b) < 2:
        return None
    pooled, n = a + b, len(a)
    observed = abs(sum(a) / n - sum(b) / len(b))
    total = sum(pooled)
    hits = 0
    for idx in itertools.combinations(range(len(pooled)), n):
        sa = sum(pooled[i] for i in idx)
        hits += abs(sa / n - (total - sa) / len(b)) >= observed - 1e-12
    return hits / math.comb(len(pooled), n)


def _write_table(table: list[dict], rep_dir: Path, every: int) -> int:
    cols = []
    for r in table:
        cols += [c for c in r if c not in cols and c not in ("seed", "kimg") and _shown(c.split("_", 1)[1])]
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["| seed | kimg | " + " | ".join(cols) + " |", "|" + " --- |" * (len(cols) + 2)]
    lines += [f"| {r['seed']} | {r['kimg']} | " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in table]
    lines += ["", f"r_t and p: the mean over the ticks of the {every} kimg up to each row. Per seed (r_t, p: mean of "
              f"the last {3 * every} kimg; metrics: the last value), official vs adagan:", "",
              "| statistic | official per seed | adagan per seed | official mean | adagan mean | apart "
              "| permutation p |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    summary = summarise(table, 3 * every)
    seeds = lambda vs: " / ".join(fmt(v) for v in vs)  # noqa: E731
    for s in summary:
        if not _shown(s["stat"]):
            continue
        lines.append(f"| {s['stat']} | {seeds(s['official'])} | {seeds(s['adagan'])} | {fmt(s['official_mean'])} | "
                     f"{fmt(s['adagan_mean'])} | {'beyond the seed spread' if s['beyond_seed_spread'] else 'no'} | "
                     f"{fmt(s['permutation_p'])} |")
    text = "\n".join(lines)
    print(text)
    (rep_dir / "report.md").write_text(text + "\n\nGrids: grid-seedS-KKK.png (official G_ema left, adagan right, "
                                       f"the same {GRID_N} latents, seed {GRID_SEED}, const noise).\n")
    (rep_dir / "report.json").write_text(json.dumps({"rows": table, "summary": summary}, indent=1))
    return 0
