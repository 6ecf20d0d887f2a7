"""A run's own progress report: plots of stats.jsonl and metric-*.jsonl, and a small HTML page.

`write_report(run_dir)` renders `report.png` (losses, augment p, r_t, D's scores with LeCam's
averages of them when it is on, penalties, metrics and the augmentation leak measure vs kimg) and
`report.html` (self-contained: the plot and the newest image grids are embedded as base64 PNGs).
Needs matplotlib (`pip install adagan[report]`).
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from pathlib import Path

from adagan.errors import AdaganError
from adagan.files import atomic_write, write_text

PANELS = [
    ("Losses", ["Loss/G/loss", "Loss/D/loss"]),
    ("Augmentation", ["Progress/augment", "Loss/signs/real"]),  # signs/real = r_t per tick
    # LeCam (--lecam): the averages of D's real/fake scores it pulls the scores towards (dashed, same colours).
    ("D scores", ["Loss/scores/real", "Loss/scores/fake", "Loss/lecam/ema_real", "Loss/lecam/ema_fake"]),
    ("Regularization", ["Loss/r1_penalty", "Loss/pl_penalty", "Loss/lecam/penalty"]),
    ("Speed (sec/kimg)", ["Timing/sec_per_kimg"]),
]
# The leak measure (metrics/leak.py) on its own axis: its headline and its two groups (0 = like the reals).
LEAK_PANEL = "Augmentation leak"
LEAK_KEY = re.compile(r"^leak\d+k(_colour|_geometry)?$")
STYLES = {"Loss/scores/real": {"color": "C0"}, "Loss/scores/fake": {"color": "C1"},
          "Loss/lecam/ema_real": {"color": "C0", "ls": "--"}, "Loss/lecam/ema_fake": {"color": "C1", "ls": "--"}}


MAX_LINE = 1 << 20  # a stats line longer than this is not ours: skipped without being held whole


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a .jsonl file, one per line; lines that are not one (cut short by a kill, edited,
    too long) are skipped. A missing file or one that is not a regular file reads as empty."""
    rows = []
    if not path.is_file():
        return rows
    with open(path, "rb") as f:
        while line := f.readline(MAX_LINE + 1):
            if len(line) > MAX_LINE:  # skip the rest of an overlong line
                while line and not line.endswith(b"\n"):
                    line = f.readline(MAX_LINE + 1)
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _num(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _metric_series(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list[tuple[float, float]]] = {}
    for path in sorted(run_dir.glob("metric-*.jsonl")):
        for row in read_jsonl(path):
            kimg, results = row.get("kimg"), row.get("results")
            if not _num(kimg) or not isinstance(results, dict):
                continue
            for key, value in results.items():
                if _num(value):
                    series.setdefault(str(key), []).append((float(kimg), float(value)))
    return series


def panel_series(rows: list[dict], metrics: dict[str, list]) -> list[tuple[str, dict[str, list]]]:
    """[(panel title, {stat name: [(kimg, value)]})] as report.png draws them; a stat a run never reported
    (say LeCam's, with --lecam 0) has no series."""
    panels = []
    others = sorted(k for k in metrics if not k.startswith("leak"))
    leak = sorted(k for k in metrics if LEAK_KEY.match(k))
    extra = ([("Metrics", others)] if others else []) + ([(LEAK_PANEL, leak)] if leak else [])
    for title, keys in PANELS + extra:
        series = {}
        for key in keys:
            pts = metrics.get(key) if title in ("Metrics", LEAK_PANEL) else [
                (r["Progress/kimg"], r[key]) for r in rows if _num(r.get(key)) and _num(r.get("Progress/kimg"))]
            if pts:
                series[key] = pts
        panels.append((title, series))
    return panels


def write_report(run_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Render report.png and report.html in run_dir; returns their paths."""
    run_dir = Path(run_dir)
    rows = [r for r in read_jsonl(run_dir / "stats.jsonl") if _num(r.get("Progress/kimg"))]
    if not rows:
        raise AdaganError(f"{run_dir} has no stats.jsonl lines (or none readable); is it a training run directory?")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise AdaganError("the report needs matplotlib: pip install matplotlib") from None

    panels = panel_series(rows, _metric_series(run_dir))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), sharex=True)
    for ax, (title, series) in zip(axes, panels, strict=True):
        for key, pts in series.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 30 else None,
                    label=key.split("/", 1)[-1], **STYLES.get(key, {}))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8, loc="best")
    axes[-1].set_xlabel("kimg")
    fig.suptitle(run_dir.name, fontsize=11)
    fig.tight_layout()
    png = run_dir / "report.png"
    try:
        atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    finally:
        plt.close(fig)

    grids = sorted(run_dir.glob("fakes[0-9]*.png"))[-1:] + [p for p in (run_dir / "reals.png",) if p.exists()]
    last = rows[-1]
    summary = ", ".join(f"{k} {last[k]:.4g}" for k in ("Progress/kimg", "Progress/augment", "Loss/G/loss",
                                                         "Loss/D/loss") if _num(last.get(k)))
    parts = [f"<h1>{html.escape(run_dir.name)}</h1><p>{html.escape(summary)}</p>", _img(png, "progress")]
    for g in grids:
        parts.append(f"<h2>{html.escape(g.name)}</h2>" + _img(g, g.name))
    page = ("<!doctype html><meta charset='utf-8'><title>adagan report</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}</style>"
            + "".join(parts))
    out = run_dir / "report.html"
    write_text(out, page)
    return png, out


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"
