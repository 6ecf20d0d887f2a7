"""Everything that watches a training run without changing it: log.txt and the console, stats.jsonl,
TensorBoard, the progress bar, image grids and report.png (phase timings: trainer.PhaseTimer).

Only the main process writes files or prints; each method may be called on every rank. Nothing here
draws from the global random generators (the grids use their own), so watching never changes what is
learned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from adagan.config import to_json
from adagan.errors import ConfigError
from adagan.files import atomic_write, save_png, write_text
from adagan.ops.image import make_grid, to_float, to_uint8

if TYPE_CHECKING:
    from adagan.training.trainer import Trainer

GRID_SEED = 123  # the fixed latents of every fakes grid


def grid_shape(resolution: int) -> tuple[int, int]:
    """(columns, rows) of the image grids: about 1024x768 pixels, 4-16 columns, 4-12 rows."""
    gw = int(np.clip(1024 // resolution, 4, 16))
    gh = int(np.clip(768 // resolution, 4, 12))
    return gw, gh


def save_image_grid(images: torch.Tensor, path: Path, grid: tuple[int, int]) -> None:
    """images: float [N, C, H, W] in [-1, 1] -> a PNG grid of grid=(cols, rows), written atomically."""
    gw, gh = grid
    save_png(make_grid(to_uint8(images).permute(0, 2, 3, 1).cpu().numpy(), cols=gw, rows=gh), path)


class ImageGrids:
    """reals.png and the fakes grids: G_ema on fixed latents (label-sorted rows when conditional)."""

    def __init__(self, dataset, resolution: int, z_dim: int, c_dim: int, batch: int, device):
        self.dataset, self.c_dim, self.batch, self.device = dataset, c_dim, batch, device
        self.shape = grid_shape(resolution)
        gw, gh = self.shape
        self.z = torch.randn([gw * gh, z_dim], generator=torch.Generator().manual_seed(GRID_SEED))
        rows = torch.arange(gh).repeat_interleave(gw) % max(c_dim, 1)
        self.c = torch.nn.functional.one_hot(rows, c_dim).float() if c_dim else None

    def fakes(self, G_ema, path: Path) -> None:
        imgs = []
        with torch.no_grad():
            for i in range(0, len(self.z), self.batch):
                c = self.c[i: i + self.batch].to(self.device) if self.c is not None else None
                imgs.append(G_ema(self.z[i: i + self.batch].to(self.device), c, noise_mode="const"))
        save_image_grid(torch.cat(imgs), path, self.shape)

    def reals(self, path: Path) -> None:
        save_image_grid(to_float(self._real_images(), "cpu"), path, self.shape)

    def _real_images(self) -> torch.Tensor:
        ds, (gw, gh) = self.dataset, self.shape
        n = min(gw * gh, len(ds))
        if not self.c_dim:
            idx = np.random.RandomState(0).permutation(len(ds))[:n].tolist()
            return ds.get_batch(idx)[0]
        # Label-sorted rows: row r shows class r % c_dim.
        labels = ds.get_batch(list(range(len(ds))))[1].argmax(1) if len(ds) <= 50000 else None
        idx = []
        for row in range(gh):
            cands = (labels == row % self.c_dim).nonzero().flatten().tolist() if labels is not None else []
            cands = cands or list(range(len(ds)))
            idx += [cands[i % len(cands)] for i in range(gw)]
        return ds.get_batch(idx)[0]


class Logger:
    """Prints and appends to log.txt (main process only)."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        try:
            self.file = open(run_dir / "log.txt", "a") if enabled else None  # noqa: SIM115
        except OSError as e:
            raise ConfigError(f"cannot write {run_dir / 'log.txt'} ({e.strerror or e}); make the run directory "
                              "writable, or train elsewhere with --outdir") from None

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        print(msg, flush=True)
        self.file.write(msg + "\n")
        self.file.flush()

    def close(self):
        if self.file:
            self.file.close()


class Monitor:
    """The run's console, files and dashboards (main process), created before the training state."""

    def __init__(self, run_dir: Path, ctx):
        self.run_dir, self.main = Path(run_dir), ctx.is_main
        self.log = Logger(self.run_dir, self.main)
        self.bar = None
        self.tb = None
        self.grids: ImageGrids | None = None

    def start(self, t: Trainer, *, resumed: bool, progress_bar: bool | None) -> None:
        """config.json, stats.jsonl cut back to the resumed state (emptied when from scratch), first grids, the
        opening line."""
        config, cur_nimg = t.config, t.state.progress.cur_nimg
        self.grids = ImageGrids(t.dataset, config.G.img_resolution, config.G.z_dim, config.G.c_dim, t.batch_gpu,
                                t.ctx.device)
        if not self.main:
            return
        if resumed or cur_nimg == 0:  # from scratch: ticks of an attempt that never saved a state go too
            truncate_stats(self.run_dir / "stats.jsonl", cur_nimg)
        write_text(self.run_dir / "config.json", to_json(config) + "\n")
        if cur_nimg == 0:
            self.grids.reals(self.run_dir / "reals.png")
            self.grids.fakes(t.G_ema, self.run_dir / "fakes_init.png")
        n_g = sum(p.numel() for p in t.G.parameters())
        n_d = sum(p.numel() for p in t.D.parameters())
        self.log(f"Training {config.preset} at {config.G.img_resolution}px on {len(t.dataset)} images "
                 f"({t.dataset.name}), G {n_g:,} / D {n_d:,} params, batch {config.batch} ({t.rounds}x{t.batch_gpu} "
                 f"per process, {t.ctx.world_size} process(es)), device {t.ctx.device}, run dir {self.run_dir}")
        self.bar = _progress_bar(progress_bar, cur_nimg, int(config.kimg * 1000))
        self.tb = _tensorboard(self.run_dir)

    def advance(self, nimg: int) -> None:
        if self.bar is not None:
            self.bar.update(nimg)

    def tick(self, record: dict, *, sec_per_kimg: float, eta: float | None) -> None:
        """The tick line (eta None: the last tick), its stats.jsonl line and TensorBoard scalars."""
        if not self.main:
            return
        if self.bar is not None:
            self.bar.clear()
        r_t = record["Progress/r_t"]
        mem = record.get("Resources/peak_gpu_mem_gb", record.get("Resources/peak_ram_gb", float("nan")))
        self.log(f"tick {record['Progress/tick']:<4d} kimg {record['Progress/kimg']:<8.1f} "
                 f"sec/kimg {sec_per_kimg:<7.2f} ETA {'-' if eta is None else _fmt_time(eta):<10s} "
                 f"augment {record['Progress/augment']:.3f}  r_t {'-' if r_t is None else f'{r_t:.3f}'}  "
                 f"G {record.get('Loss/G/loss', float('nan')):.3f}  D {record.get('Loss/D/loss', float('nan')):.3f}"
                 f"  mem {mem:.2f}GB")
        with open(self.run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps(record, allow_nan=True) + "\n")
        self._scalars(record, record["Progress/kimg"])

    def fakes_grid(self, G_ema, cur_nimg: int) -> None:
        """fakesNNNNNN.png: G_ema on the fixed grid latents (NNNNNN = kimg)."""
        if self.main:
            self.grids.fakes(G_ema, self.run_dir / f"fakes{cur_nimg // 1000:06d}.png")

    def report(self) -> None:
        """report.png/html, when matplotlib is installed (a plotting problem never stops training)."""
        if not self.main:
            return
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return
        from adagan.report import write_report

        try:
            write_report(self.run_dir)
        except Exception as e:
            self.log(f"(report not written: {e})")

    def metrics(self, results: dict, kimg: float) -> None:
        if self.main and results:
            self.log("metrics: " + "  ".join(f"{k} {v:.4g}" for k, v in results.items()))
            self._scalars({f"Metrics/{k}": v for k, v in results.items()}, kimg)

    def _scalars(self, values: dict, kimg: float) -> None:
        if self.tb is None:
            return
        for k, v in values.items():
            if isinstance(v, int | float) and v is not None:
                self.tb.add_scalar(k, v, global_step=int(kimg))
        self.tb.flush()

    def close(self) -> None:
        for thing in (self.bar, self.tb):
            if thing is not None:
                thing.close()

    def finish(self, summary: dict) -> dict:
        """The closing line (why training stopped, what to do next); closes log.txt."""
        kimg = summary["kimg"]
        if summary["stopped_by"] == "complete":
            self.log(f"This run is complete: kimg {kimg:.1f} of --kimg {summary['total_kimg']:g}; nothing to train. "
                     f"Newest snapshot: {summary['snapshot'] or 'none'}. Pass a larger --kimg to continue it.")
        elif summary["snapshot"] is None:
            self.log(f"Stopped at kimg {kimg:.1f} ({summary['stopped_by']}) with non-finite losses, so no snapshot or "
                     f"state was written; the newest good snapshot is {summary.get('last_good') or 'none'}.")
        elif summary["stopped_by"] == "time":
            self.log(f"Stopped after {summary['minutes']:.1f} minutes (time limit) at kimg {kimg:.1f}; rerun "
                     "the same command with a larger --kimg or --max-minutes to continue.")
        elif summary["stopped_by"] != "kimg":
            self.log(f"Stopped by {summary['stopped_by']} at kimg {kimg:.1f}; state saved. Rerun the same "
                     "command to resume.")
        else:
            self.log(f"Done: {kimg:.1f} kimg. Final snapshot: {summary['snapshot']}")
        self.log.close()
        return summary


def truncate_stats(path: Path, cur_nimg: int) -> None:
    """Drop stats lines written after the state we resume from (a kill can leave some), and lines that are
    not a tick's record (cut short, or edited)."""
    if not path.is_file():
        return

    def write(tmp):
        with open(path, "rb") as src, open(tmp, "w") as dst:
            for raw in src:
                try:
                    kimg = json.loads(raw)["Progress/kimg"]
                    if isinstance(kimg, int | float) and kimg * 1000 <= cur_nimg + 1e-6:
                        dst.write(raw.decode().rstrip("\n") + "\n")
                except (ValueError, KeyError, TypeError, IndexError, RecursionError):
                    continue

    atomic_write(path, write)


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s"


def _progress_bar(enabled, start, total):
    """A tqdm bar when enabled (the CLI: stderr is a terminal), else a plain line at most every 30 s between the
    tick lines (nohup, CI, a notebook; adagan.progress)."""
    from adagan.progress import PlainProgress, progress

    if not enabled:
        return PlainProgress(total, desc="training", initial=start)
    return progress(total, initial=start, show=True, unit_scale=True, leave=False, dynamic_ncols=True)


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    try:
        return SummaryWriter(str(run_dir))
    except Exception:  # tensorboard installed but broken: training goes on without it
        return None
