"""The limited-data study: noaug vs ADA vs fixed-p augmentation (and DiffAugment, LeCam) on subsets of one dataset.

For every (subset, setting) pair this trains one run with `adagan train` (same preset, seed,
kimg and everything else), evaluates KID/FID of the snapshots against the FULL dataset, and
writes OUTDIR/results.md (table) plus PNG plots (metric vs kimg per setting, one panel per
subset; augment p and Loss/signs/real = r_t vs kimg).

    python benchmarks/limited_data.py --data builtin:twemoji --outdir study \\
        --subsets 250,1000,all --settings noaug,ada,fixed0.2 --kimg 20 --tick 1 --snap 5
    python benchmarks/limited_data.py --outdir study --report-only     # table + plots only

Resumable: rerunning the same command skips finished runs, resumes stopped ones exactly (each
run is `adagan train --name <subset>-<setting>`, which resumes by itself) and evaluates only
snapshots that have no metric line yet. Arguments after `--` go to every `adagan train` call
unchanged, e.g. `-- --augment.ada_kimg=20`. Settings: `noaug`, `ada`, `fixedP` (e.g. fixed0.2) or
`diffaug` (DiffAugment: `--aug diffaug`), each optionally followed by `+lecam` (LeCam at weight
LECAM_WEIGHT) or `+lecamW` (weight W, e.g. ada+lecam0.01) and, for ada and fixedP, `+diffaug`
(DiffAugment's policy with that p: `--augpipe diffaug`), e.g. `ada+lecam`, `diffaug+lecam0.3`, `ada+diffaug`.

Transfer learning (docs/results.md "Transfer learning"): `--resume NET` starts every run from a pretrained
network (a file, builtin:twemoji32, a pretrained name or URL), `+freezedN` freezes D's first N layers in one
setting (Freeze-D, `--freezed N`) and `+scratch` starts that setting from noise instead, e.g.
`--resume builtin:twemoji32 --settings noaug,ada,ada+freezed4,ada+scratch`.

KID and FID with the same number of generated images share one set of generated features
(one Inception pass per snapshot); the augmentation leak (leak1k, docs/metrics.md) needs no detector.
The real features of the full dataset are computed once and cached (see `adagan metrics`). Metric
lines are written to RUN/metric-NAME.jsonl in the format `adagan train --metrics` uses, so `adagan
report RUN` shows them too.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import NamedTuple

STUDY_FILE = "study.json"
METRIC_KINDS = ("kid", "fid", "mem", "leak")
LECAM_WEIGHT = 0.3  # `+lecam` without a number (the paper's weight for BigGAN; its StyleGAN2 scripts: 3e-7, 1e-6)


# ---- the plan ---------------------------------------------------------------------------------------------

class Setting(NamedTuple):
    """One study setting as `adagan train` flags."""

    mode: str  # --aug: noaug | ada | fixed | diffaug (the shortcut for fixed, p 1, DiffAugment)
    p: float | None  # --p (fixed only)
    augpipe: str | None = None  # --augpipe (None: the default)
    lecam: float | None = None  # --lecam (None: off)
    freezed: int | None = None  # --freezed (None: the preset's, 0)
    scratch: bool = False  # --resume none: from noise even when the study has --resume

    def train_args(self) -> list[str]:
        out = ["--aug", self.mode]
        if self.p is not None:
            out += ["--p", f"{self.p:g}"]
        if self.augpipe is not None:
            out += ["--augpipe", self.augpipe]
        if self.lecam is not None:
            out += ["--lecam", f"{self.lecam:g}"]
        if self.freezed is not None:
            out += ["--freezed", str(self.freezed)]
        return out


def parse_setting(s: str) -> Setting:
    """'noaug' | 'ada' | 'fixed0.2' | 'diffaug', then '+lecam[W]', (ada, fixedP) '+diffaug', '+freezedN' and
    '+scratch' -> Setting."""
    s = s.strip()
    base, *mods = s.split("+")
    bad = f"Error: unknown setting {s!r}; use noaug, ada, fixedP with P in [0, 1] (e.g. fixed0.2) or diffaug, " \
          "optionally with +lecam or +lecamW (W >= 0), +freezedN (N >= 0), +scratch and, for ada and fixedP, " \
          "+diffaug (e.g. ada+lecam, ada+freezed4)"
    m = re.fullmatch(r"fixed(?:=|-)?(\d*\.?\d+)", base)
    if base in ("noaug", "ada", "diffaug"):
        out = Setting(base, None)
    elif m and 0 <= float(m.group(1)) <= 1:
        out = Setting("fixed", float(m.group(1)))
    else:
        raise SystemExit(bad)
    for mod in mods:
        if mod == "diffaug" and out.mode in ("ada", "fixed") and out.augpipe is None:
            out = out._replace(augpipe="diffaug")
        elif mod.startswith("lecam") and out.lecam is None:
            try:
                weight = float(mod[len("lecam"):] or LECAM_WEIGHT)
            except ValueError:
                raise SystemExit(bad) from None
            if not (math.isfinite(weight) and weight >= 0):
                raise SystemExit(bad)
            out = out._replace(lecam=weight)
        elif re.fullmatch(r"freezed\d+", mod) and out.freezed is None:
            out = out._replace(freezed=int(mod[len("freezed"):]))
        elif mod == "scratch" and not out.scratch:
            out = out._replace(scratch=True)
        else:
            raise SystemExit(bad)
    return out


def parse_subset(s: str) -> int | None:
    s = s.strip()
    if s == "all":
        return None
    if s.isdigit() and int(s) > 0:
        return int(s)
    raise SystemExit(f"Error: unknown subset {s!r}; use a positive number of images or 'all'")


def subset_label(n: int | None) -> str:
    return "all" if n is None else f"sub{n}"


def run_names(subsets, settings) -> list[tuple[str, int | None, str]]:
    """[(run name, subset, setting)] in study order (subset-major)."""
    return [(f"{subset_label(n)}-{s}", n, s) for n in subsets for s in settings]


def train_args(args, subset: int | None, setting: str, name: str, kimg: float) -> list[str]:
    parsed = parse_setting(setting)
    out = ["--data", args.data, "--outdir", str(args.outdir), "--name", name, *parsed.train_args(),
           "--kimg", f"{kimg:g}", "--seed", str(args.seed), "--tick", f"{args.tick:g}", "--snap", str(args.snap)]
    if args.cfg:
        out += ["--cfg", args.cfg]
    resume = "none" if parsed.scratch else args.resume
    if resume:
        out += ["--resume", resume]
    if subset is not None:
        out += ["--subset", str(subset)]
    return out + list(args.train_args)


def trained_nimg(run_dir: Path) -> int:
    """Images trained so far (from the newest training state; 0 for a new run)."""
    from adagan.training import checkpoint

    states = checkpoint.list_states(run_dir)
    return int(checkpoint.STATE_RE.match(states[-1].name).group(1)) if states else 0


def check_study_file(args) -> None:
    """Refuse to mix runs made with different shared settings in one --outdir."""
    keep = {"data": args.data, "cfg": args.cfg, "seed": args.seed, "resume": args.resume,
            "train_args": list(args.train_args)}
    path = Path(args.outdir) / STUDY_FILE
    if path.exists():
        old = json.loads(path.read_text())
        diff = [k for k in keep if old.get(k) != keep[k]]
        if diff:
            raise SystemExit(f"Error: {args.outdir} holds a study made with other {', '.join(diff)} "
                             f"({', '.join(f'{k}={old.get(k)!r}' for k in diff)}); use another --outdir or the "
                             "same settings")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(keep, indent=2) + "\n")


def train_run(args, name: str, subset: int | None, setting: str, kimg: float) -> bool:
    """Train (or resume) one run up to kimg in this process; False when it stopped early (Ctrl-C)."""
    from adagan.cli.train import cli

    run_dir = Path(args.outdir) / name
    have = trained_nimg(run_dir)
    if have >= kimg * 1000:
        print(f"[study] {name}: at {have / 1000:g} kimg >= {kimg:g}, skipped", flush=True)
        return True
    print(f"[study] {name}: training {have / 1000:g} -> {kimg:g} kimg", flush=True)
    t0 = time.time()
    cli.main(args=train_args(args, subset, setting, name, kimg), standalone_mode=False)
    done = trained_nimg(run_dir) >= kimg * 1000
    print(f"[study] {name}: {'done' if done else 'stopped'} at {trained_nimg(run_dir) / 1000:g} kimg "
          f"({(time.time() - t0) / 60:.1f} min)", flush=True)
    return done


# ---- metrics ----------------------------------------------------------------------------------------------

def _snapshots(run_dir: Path) -> list[tuple[Path, float]]:
    """[(snapshot, kimg)] oldest first; kimg from the file's metadata (exact, unlike the file name)."""
    from adagan.io import read_metadata

    out = []
    for p in sorted(run_dir.glob("network-snapshot-*.safetensors")):
        try:
            out.append((p, float(read_metadata(p)["meta.kimg"])))
        except Exception:  # noqa: BLE001 - a snapshot being written or cut short: skip it this time
            continue
    return out


def _done_metrics(run_dir: Path, name: str) -> set[tuple[str, float]]:
    from adagan.report import read_jsonl

    return {(r.get("snapshot"), round(float(r["kimg"]), 3)) for r in read_jsonl(run_dir / f"metric-{name}.jsonl")
            if r.get("kimg") is not None}


class Evaluator:
    """KID/FID of snapshots against the FULL dataset and memorisation against each run's own subset, through
    `adagan.metrics.evaluate.compute_metrics` (one generated-feature pass per snapshot; cached real features)."""

    def __init__(self, data: str, metrics: list[str], device: str = "cpu"):
        import torch

        from adagan.data import open_dataset
        from adagan.metrics.evaluate import parse_metrics

        self.specs = parse_metrics(metrics)
        bad = [s.name for s in self.specs if s.kind not in METRIC_KINDS]
        if bad:
            raise SystemExit(f"Error: the study computes KID, FID, memorisation and the leak measure only "
                             f"(e.g. kid1k,fid1k,mem1k,leak1k); "
                             f"not {', '.join(bad)}")
        self.data = data
        self.device = torch.device(device)
        self.dataset = open_dataset(data, mirror=False)  # the FULL dataset, whatever the run's --subset
        self._train: dict[tuple, object] = {}

    def training_set(self, run_dir: Path):
        """The images the run trained on (its --subset and --seed of the data), for memorisation."""
        from adagan.data import open_dataset

        cfg = json.loads((run_dir / "config.json").read_text())
        key = (cfg.get("subset"), cfg.get("seed", 0))
        if key[0] is None:
            return self.dataset
        if key not in self._train:
            self._train[key] = open_dataset(self.data, mirror=False, subset=key[0], seed=key[1])
        return self._train[key]

    def pending(self, run_dir: Path, snap: Path, kimg: float) -> list:
        return [s for s in self.specs if (snap.name, round(kimg, 3)) not in _done_metrics(run_dir, s.name)]

    def evaluate(self, run_dir: Path, snap: Path, kimg: float) -> dict[str, float]:
        from adagan.io import load_network
        from adagan.metrics.evaluate import compute_metrics

        specs = self.pending(run_dir, snap, kimg)
        if not specs:
            return {}
        t0 = time.time()
        out: dict[str, float] = {}

        def record(spec, res: dict[str, float], seconds: float) -> None:
            line = {"results": res, "metric": spec.name, "snapshot": snap.name, "kimg": kimg,
                    "total_time": round(time.time() - t0, 3), "timestamp": time.time(), "real": len(self.dataset),
                    "source": "benchmarks/limited_data.py"}
            with open(run_dir / f"metric-{spec.name}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
            out.update(res)

        G = load_network(snap, "G_ema", device=self.device)
        compute_metrics(G, self.dataset, specs, device=self.device, batch_size=32, progress=False, seed=0,
                        train_dataset=self.training_set(run_dir), on_result=record)
        return out


def evaluate_all(args, names: list[str]) -> None:
    """Evaluate pending snapshots: every run's newest first (so the table fills early), then the rest."""
    ev = None
    todo: list[tuple[int, float, int, str, Path, float]] = []
    for j, name in enumerate(names):
        run_dir = Path(args.outdir) / name
        snaps = _snapshots(run_dir) if run_dir.is_dir() else []
        snaps = [(p, k) for p, k in snaps if k <= args.kimg + 0.1]  # a longer run is evaluated up to --kimg
        for i, (snap, kimg) in enumerate(reversed(snaps)):
            if args.eval == "final" and i > 0:
                break
            todo.append((0 if i == 0 else 1, -kimg, j, name, snap, kimg))
    for _, _, _, name, snap, kimg in sorted(todo, key=lambda t: t[:3]):
        run_dir = Path(args.outdir) / name
        if ev is None:
            ev = Evaluator(args.data, args.metrics.split(","), device=args.device)
        if not ev.pending(run_dir, snap, kimg):
            continue
        t0 = time.time()
        res = ev.evaluate(run_dir, snap, kimg)
        print(f"[study] {name} @ {kimg:g} kimg: " + "  ".join(f"{k} {v:.4g}" for k, v in res.items())
              + f"  ({time.time() - t0:.0f} s)", flush=True)


# ---- table and plots --------------------------------------------------------------------------------------

MEM_RESULTS = ("copies", "dist", "copies_px", "dist_px")  # memorisation results (adagan/metrics/memorisation.py)
LEAK_RESULTS = ("", "_colour", "_geometry")  # the leak measure's headline and groups (adagan/metrics/leak.py)


def result_keys(metric_names: list[str]) -> list[str]:
    """The result series of the metrics: kid1k -> [kid1k]; mem1k -> [mem1k_copies, mem1k_dist, ...];
    leak1k -> [leak1k, leak1k_colour, leak1k_geometry]."""
    def keys(m: str) -> list[str]:
        if m.startswith("mem"):
            return [f"{m}_{r}" for r in MEM_RESULTS]
        return [m + r for r in LEAK_RESULTS] if m.startswith("leak") else [m]

    return [k for m in metric_names for k in keys(m)]


def load_run(run_dir: Path, metric_names: list[str]) -> dict:
    """stats.jsonl lines and {result key: [(kimg, value)]} of the run's metric files."""
    from adagan.report import read_jsonl

    stats = read_jsonl(run_dir / "stats.jsonl")
    metrics: dict[str, list] = {}
    for m in metric_names:
        keys = result_keys([m])
        pts: dict[str, dict[float, float]] = {k: {} for k in keys}
        for r in read_jsonl(run_dir / f"metric-{m}.jsonl"):
            for k in keys:
                v = (r.get("results") or {}).get(k)
                if r.get("kimg") is not None and isinstance(v, int | float) and math.isfinite(v):
                    pts[k][round(float(r["kimg"]), 3)] = float(v)  # the last line for a kimg wins
        metrics.update({k: sorted(v.items()) for k, v in pts.items()})
    return {"stats": stats, "metrics": metrics}


def _fmt(v: float | None, metric: str = "") -> str:
    if v is None:
        return "–"
    if metric.startswith("kid"):
        return f"{v * 1e3:.2f}"
    return f"{v:.3f}" if metric.startswith(("mem", "leak")) else f"{v:.2f}"


def _series(stats: list[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in stats:
        v = r.get(key)
        if isinstance(v, int | float) and math.isfinite(v):
            xs.append(r["Progress/kimg"])
            ys.append(v)
    return xs, ys


def write_table(outdir: Path, subsets, settings, metric_names: list[str], runs: dict) -> str:
    lines = ["# Limited-data study", "",
             f"Runs in `{outdir}`. KID is shown x10^3. `final` = the newest evaluated snapshot; `best` = the lowest "
             "value over the evaluated snapshots (at kimg). signs/real = Loss/signs/real (the r_t statistic) "
             "averaged over the last tick; p = the augment probability at the end.", "",
             "| run | images | kimg | " + "".join(f"{m} final | {m} best (kimg) | " for m in metric_names)
             + "signs/real | max signs/real | p |",
             "|" + "---|" * (6 + 2 * len(metric_names))]
    for n in subsets:
        for s in settings:
            name = f"{subset_label(n)}-{s}"
            r = runs.get(name)
            if r is None or not r["stats"]:
                lines.append(f"| {name} | {n or 'all'} | not run |" + " |" * (3 + 2 * len(metric_names)))
                continue
            last = r["stats"][-1]
            cells = []
            for m in metric_names:
                pts = r["metrics"][m]
                if pts:
                    bk, bv = min(pts, key=lambda t: t[1])
                    cells += [f"{_fmt(pts[-1][1], m)} @ {pts[-1][0]:.0f}", f"{_fmt(bv, m)} ({bk:.0f})"]
                else:
                    cells += ["–", "–"]
            sr = last.get("Loss/signs/real")
            srs = _series(r["stats"], "Loss/signs/real")[1]
            lines.append(f"| {name} | {n or 'all'} | {last['Progress/kimg']:.0f} | " + "".join(c + " | " for c in cells)
                         + f"{'–' if sr is None else f'{sr:.3f}'} | {f'{max(srs):.3f}' if srs else '–'} | "
                         f"{last.get('Progress/augment', 0):.3f} |")
    # Improvement of each augmented setting over noaug at the same kimg (the newest kimg both have).
    others = [s for s in settings if s != "noaug"]
    if "noaug" in settings and others and metric_names:
        lines += ["", "Change vs noaug at the same kimg (the newest kimg evaluated in both runs; negative = lower = "
                  "better):", "", "| subset | setting | kimg | " + " | ".join(
                      f"{m} noaug | {m} setting | {m} change" for m in metric_names) + " |",
                  "|" + "---|" * (3 + 3 * len(metric_names))]
        for n in subsets:
            base = runs.get(f"{subset_label(n)}-noaug")
            for s in others:
                r = runs.get(f"{subset_label(n)}-{s}")
                if not base or not r:
                    continue
                cells, kimg_used = [], None
                for m in metric_names:
                    a, b = dict(base["metrics"][m]), dict(r["metrics"][m])
                    common = sorted(set(a) & set(b))
                    if not common:
                        cells += ["–", "–", "–"]
                        continue
                    k = common[-1]
                    kimg_used = k
                    change = f"{(b[k] - a[k]) / abs(a[k]) * 100:+.0f}%" if a[k] else f"{b[k] - a[k]:+.3g}"
                    cells += [_fmt(a[k], m), _fmt(b[k], m), change]
                lines.append(f"| {n or 'all'} | {s} | {'–' if kimg_used is None else f'{kimg_used:.0f}'} | "
                             + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_plots(outdir: Path, subsets, settings, metric_names: list[str], runs: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {s: f"C{i}" for i, s in enumerate(settings)}
    paths = []
    ncol = len(subsets)
    for m in metric_names:
        fig, axes = plt.subplots(1, ncol, figsize=(3.6 * ncol, 3.0), squeeze=False, sharey=True)
        for ax, n in zip(axes[0], subsets, strict=True):
            for s in settings:
                r = runs.get(f"{subset_label(n)}-{s}")
                if r and r["metrics"][m]:
                    xs, ys = zip(*r["metrics"][m], strict=True)
                    ax.plot(xs, [y * 1e3 if m.startswith("kid") else y for y in ys], "o-", ms=3, color=colors[s],
                            label=s)
            ax.set_title(f"{n or 'all'} images")
            ax.set_xlabel("kimg")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(f"{m} (x10^3)" if m.startswith("kid") else m)
        if axes[0][0].get_legend_handles_labels()[0]:
            axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        path = outdir / f"{m}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    fig, axes = plt.subplots(2, ncol, figsize=(3.6 * ncol, 5.4), squeeze=False, sharex="col")
    for j, n in enumerate(subsets):
        for s in settings:
            r = runs.get(f"{subset_label(n)}-{s}")
            if not r:
                continue
            axes[0][j].plot(*_series(r["stats"], "Progress/augment"), color=colors[s], label=s)
            axes[1][j].plot(*_series(r["stats"], "Loss/signs/real"), color=colors[s], label=s)
        axes[0][j].set_title(f"{n or 'all'} images")
        axes[1][j].set_xlabel("kimg")
        axes[1][j].set_ylim(-1.05, 1.05)
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("augment p")
    axes[1][0].set_ylabel("signs/real (r_t)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path = outdir / "augment.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    paths.append(path)
    return paths


def write_samples(outdir: Path, names: list[str], rows: int = 2) -> Path | None:
    """samples.png: the top `rows` rows of each run's fakes grid at the newest kimg all of them have (else
    each run's newest), under the same rows of reals.png."""
    import matplotlib
    import numpy as np
    from PIL import Image

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grids = {name: {int(g.stem[5:]): g for g in (outdir / name).glob("fakes[0-9]*.png")}
             for name in names if (outdir / name).is_dir()}
    grids = {name: g for name, g in grids.items() if g}
    common = set.intersection(*(set(g) for g in grids.values())) if grids else set()
    strips = []
    for name, by_kimg in grids.items():
        kimg = max(common) if common else max(by_kimg)
        if not strips and (outdir / name / "reals.png").exists():
            strips.append(("reals (this subset)" if name.startswith("sub") else "reals", outdir / name / "reals.png"))
        strips.append((f"{name} @ {kimg} kimg", by_kimg[kimg]))
    if not strips:
        return None
    fig, axes = plt.subplots(len(strips), 1, figsize=(8, 0.6 * rows * len(strips)), squeeze=False)
    for ax, (label, path) in zip(axes[:, 0], strips, strict=True):
        img = np.asarray(Image.open(path).convert("RGB"))
        cell = img.shape[1] // 16 if img.shape[1] >= 16 * 16 else img.shape[0]
        ax.imshow(img[: rows * cell])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label, loc="left", fontsize=8)
    fig.tight_layout()
    path = outdir / "samples.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    Image.open(path).convert("RGB").quantize(colors=128).save(path, optimize=True)  # a few times smaller
    return path


def _common_snapshots(run_dirs: list[Path]) -> tuple[float, list[Path]] | None:
    """(kimg, [snapshot per run]) at the newest kimg every run has a snapshot for."""
    per_run = [{round(k, 3): p for p, k in _snapshots(d)} if d.is_dir() else {} for d in run_dirs]
    common = set.intersection(*(set(r) for r in per_run)) if per_run else set()
    if not common:
        return None
    k = max(common)
    return k, [r[k] for r in per_run]


def write_nearest(outdir: Path, data: str, subset: int | None, settings, num: int = 8) -> Path | None:
    """nearest.png: `num` samples of every setting on one subset at the same kimg, each above its nearest
    training image (pixel distance at 32x32, as in the memorisation metric)."""
    import matplotlib
    import numpy as np
    import torch

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adagan.data import open_dataset
    from adagan.io import load_network
    from adagan.metrics.memorisation import nearest, pixel_vectors
    from adagan.metrics.stats import generator_fn

    names = [f"{subset_label(subset)}-{s}" for s in settings]
    found = _common_snapshots([outdir / n for n in names])
    if found is None:
        return None
    kimg, snaps = found
    train = open_dataset(data, mirror=False, subset=subset,
                         seed=json.loads((outdir / names[0] / "config.json").read_text()).get("seed", 0))
    reals = train.get_batch(list(range(len(train))))[0]
    ref = pixel_vectors(reals)
    fig, axes = plt.subplots(len(names), 1, figsize=(1.0 * num, 2.3 * len(names)), squeeze=False)
    for ax, name, snap in zip(axes[:, 0], names, snaps, strict=True):
        G = load_network(snap, "G_ema")
        fakes = generator_fn(G, seed=0)(np.arange(num))
        _, idx = nearest(pixel_vectors(fakes), ref)
        pair = torch.cat([torch.cat(list(fakes), 2), torch.cat(list(reals[idx]), 2)], 1)  # [C, 2H, num*W]
        ax.imshow(pair.permute(1, 2, 0).numpy())
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{name} @ {kimg:g} kimg: samples (top), nearest training image (bottom)", loc="left",
                     fontsize=8)
    fig.tight_layout()
    path = outdir / f"nearest-{subset_label(subset)}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def report(args, subsets, settings) -> Path:
    outdir = Path(args.outdir)
    metric_names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    runs = {}
    for name, _, _ in run_names(subsets, settings):
        if (outdir / name / "stats.jsonl").exists():
            runs[name] = load_run(outdir / name, metric_names)
    keys = result_keys(metric_names)
    table = write_table(outdir, subsets, settings, [k for k in keys if not k.endswith(("_dist", "_dist_px"))], runs)
    plots = write_plots(outdir, subsets, settings, keys, runs)
    samples = write_samples(outdir, [name for name, _, _ in run_names(subsets, settings)])
    plots += [samples] if samples else []
    study_file = outdir / STUDY_FILE
    data = json.loads(study_file.read_text())["data"] if study_file.exists() else args.data
    for n in subsets:
        near = write_nearest(outdir, data, n, settings)
        plots += [near] if near else []
    md = outdir / "results.md"
    md.write_text(table + "\n" + "".join(f"![{p.stem}]({p.name})\n" for p in plots))
    print(f"[study] wrote {md} and {', '.join(p.name for p in plots)}", flush=True)
    return md


# ---- main -------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="builtin:twemoji", help="dataset (zip, folder or builtin:twemoji)")
    ap.add_argument("--outdir", default="study", help="study directory (one run directory per subset/setting)")
    ap.add_argument("--subsets", default="250,1000,all", help="comma-separated image counts or 'all'")
    ap.add_argument("--settings", default="noaug,ada,fixed0.2",
                    help="comma-separated: noaug, ada, fixedP, diffaug; +lecam[W], +diffaug, +freezedN, +scratch "
                         "(e.g. ada+lecam, ada+freezed4)")
    ap.add_argument("--kimg", type=float, default=20, help="training length of every run")
    ap.add_argument("--round-kimg", type=float, default=None,
                    help="train all runs to this many kimg, then all to twice that, ... (default: each run to the "
                         "end in turn); a study stopped early then has all runs at about the same kimg")
    ap.add_argument("--cfg", default="cpu", help="preset for every run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", default=None, metavar="NET",
                    help="start every run from this network (transfer learning; a setting's +scratch from noise)")
    ap.add_argument("--tick", type=float, default=1.0, help="kimg per tick (stats.jsonl line)")
    ap.add_argument("--snap", type=int, default=5, help="snapshot (and metric evaluation) every N ticks")
    ap.add_argument("--metrics", default="kid1k,fid1k,mem1k,leak1k",
                    help="KID/FID and the augmentation leak (against the full data) and memorisation (against each "
                         "run's subset) metric names, or 'none'")
    ap.add_argument("--eval", choices=["all", "final"], default="all",
                    help="evaluate every snapshot up to --kimg, or only each run's newest one up to --kimg")
    ap.add_argument("--device", default="cpu", help="device for the metric evaluation")
    ap.add_argument("--report-only", action="store_true", help="only write results.md and the plots")
    ap.add_argument("--eval-only", action="store_true",
                    help="evaluate the snapshots the runs have so far and write the report, without training (e.g. "
                         "beside study processes that train with --metrics none)")
    args = ap.parse_args(argv)
    args.train_args = extra
    subsets = [parse_subset(s) for s in args.subsets.split(",") if s.strip()]
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    for s in settings:
        parse_setting(s)
    if args.metrics == "none":
        args.metrics = ""
    plan = run_names(subsets, settings)
    if args.eval_only and args.metrics:
        evaluate_all(args, [name for name, _, _ in plan])
    elif not args.report_only:
        from adagan.errors import AdaganError

        check_study_file(args)
        rounds = [args.kimg] if not args.round_kimg else \
            [min(args.round_kimg * i, args.kimg) for i in range(1, math.ceil(args.kimg / args.round_kimg) + 1)]
        try:
            for target in rounds:
                for i, (name, n, s) in enumerate(plan):
                    print(f"[study] run {i + 1}/{len(plan)}: {name} (target {target:g} kimg)", flush=True)
                    if not train_run(args, name, n, s, target):
                        print("[study] stopped; rerun the same command to resume", flush=True)
                        report(args, subsets, settings)
                        return 1
                if args.metrics:
                    evaluate_all(args, [name for name, _, _ in plan])
        except AdaganError as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
    report(args, subsets, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
