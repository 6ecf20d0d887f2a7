"""Run directories and process launch for `adagan train`.

A run lives in `<outdir>/<name>`. The name is derived from the dataset and every setting
that changes what is learned (plus a short hash of them), so rerunning the same command
finds the same directory and resumes there, while a changed setting starts a new run.
Settings that only say how long or how often (kimg, max_minutes, tick, snap, metrics)
are left out: rerunning with a larger --kimg extends the run.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from adagan.config import TrainConfig, to_dict
from adagan.errors import ConfigError
from adagan.training import checkpoint, distributed

NOT_IN_NAME = ("kimg", "max_minutes", "tick_kimg", "snap_ticks", "metrics", "amp_bf16", "channels_last")


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker process needs to open the data and train."""

    cfg: TrainConfig
    run_dir: str
    data: str | None
    resolution: int | None
    resume: str | None
    device: str
    progress_bar: bool


def run_name(cfg: TrainConfig, dataset_name: str, resume: str | None) -> str:
    d = to_dict(cfg)
    for key in NOT_IN_NAME:
        d.pop(key, None)
    d["resume"] = str(Path(resume).resolve()) if resume else None
    digest = hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:6]
    aug = cfg.augment
    parts = [dataset_name, cfg.cfg, aug.mode if aug.mode != "fixed" else f"p{aug.p:g}"]
    if cfg.cond:
        parts.append("cond")
    if cfg.mirror:
        parts.append("mirror")
    if cfg.subset:
        parts.append(f"sub{cfg.subset}")
    if resume:
        parts.append("from-" + re.sub(r"[^A-Za-z0-9_.-]+", "", Path(resume).stem)[:24])
    parts.append(digest)
    return "-".join(parts)


def prepare_run_dir(outdir: str | Path, name: str, new: bool) -> tuple[Path, bool]:
    """(run_dir, resuming). --new picks `<name>-2`, `-3`, ... when `<name>` exists."""
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
        raise ConfigError(f"--name {name!r} may only contain letters, digits and . _ + -")
    outdir = Path(outdir)
    run_dir = outdir / name
    if new and run_dir.exists():
        i = 2
        while (outdir / f"{name}-{i}").exists():
            i += 1
        run_dir = outdir / f"{name}-{i}"
    resuming = bool(checkpoint.list_states(run_dir))
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the run directory {run_dir}: {e.strerror or e}; choose another --outdir") \
            from None
    return run_dir, resuming


def _worker(ctx: distributed.Context, spec: RunSpec) -> None:
    from adagan.data import open_dataset
    from adagan.training.loop import training_loop

    cfg = spec.cfg
    torch.set_num_threads(max(torch.get_num_threads() // max(ctx.world_size, 1), 1) if ctx.device.type == "cpu"
                          else torch.get_num_threads())
    dataset = open_dataset(spec.data, resolution=spec.resolution, use_labels=cfg.cond, mirror=cfg.mirror,
                           subset=cfg.subset, seed=cfg.seed)
    metrics_fn = _metrics_fn(ctx, cfg, spec) if cfg.metrics else None
    training_loop(cfg, ctx, Path(spec.run_dir), dataset, resume_weights=Path(spec.resume) if spec.resume else None,
                  progress_bar=spec.progress_bar, metrics_fn=metrics_fn)


def _metrics_fn(ctx: distributed.Context, cfg: TrainConfig, spec: RunSpec):
    from adagan.metrics import evaluate_snapshot
    from adagan.metrics.stats import use_collectives

    collectives = distributed.Collectives(ctx) if ctx.distributed else None

    def run(snapshot_path, G_ema):
        with use_collectives(collectives):
            return evaluate_snapshot(snapshot_path, G_ema, metrics=list(cfg.metrics), data=spec.data,
                                     resolution=spec.resolution, device=ctx.device, rank=ctx.rank,
                                     world_size=ctx.world_size, subset=cfg.subset, seed=cfg.seed)

    return run


def launch_training(spec: RunSpec) -> None:
    """Run in this process, in `gpus` spawned processes, or join a torchrun group."""
    world_env = distributed.env_world_size()
    if world_env > 1:  # started by torchrun: this process is one rank
        ctx = distributed.init_from_env(spec.device)
        try:
            _worker(ctx, spec)
            distributed.barrier(ctx)  # see distributed._spawned
        finally:
            distributed.shutdown()
        return
    distributed.launch(spec.cfg.gpus, spec.device, _worker, spec)
