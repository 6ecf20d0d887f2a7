"""`adagan train` as a library: options -> a plan (config, dataset, run directory) -> processes.

`plan(...)` resolves the options exactly as the CLI does (presets.for_training on the opened dataset)
without training; `train(...)` plans and launches, in this process, in `gpus` spawned processes, or as
one rank of a torchrun group. The dataset is opened once per process: the planning process trains on
the dataset it opened, spawned processes open their own.

A run lives in `<outdir>/<name>`. The name is derived from the dataset and every setting that changes
what is learned (plus a short hash of them), so rerunning the same command finds the same directory
and resumes there, while a changed setting starts a new run. Settings that only say how long or how
often (kimg, max_minutes, tick, snap, metrics) are left out: rerunning with a larger --kimg extends the run.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from adagan import pretrained
from adagan.config import TrainConfig, to_json
from adagan.data import open_dataset
from adagan.errors import ConfigError
from adagan.io import read_metadata
from adagan.limits import check_gpus
from adagan.metrics import evaluate_snapshot
from adagan.metrics.evaluate import metric_names
from adagan.metrics.stats import use_collectives
from adagan.presets import DEFAULT_DATA, DEFAULT_RESUME, NOT_IN_NAME, for_training, run_name  # noqa: F401 (re-export)
from adagan.runtime import ThreadGovernor, cpu_count
from adagan.training import checkpoint, distributed, stats
from adagan.training.loop import training_loop


@dataclass(frozen=True)
class RunPlan:
    """What `adagan train` will do; `train(...)` = `launch(plan(...))`."""

    config: TrainConfig
    dataset: Any  # adagan.data.ImageDataset, opened with the run's options
    run_dir: Path
    resuming: bool  # run_dir holds a training state: training continues from it
    resume: str | None  # network to start from (transfer learning): a file, builtin:NAME, a pretrained name, a URL
    device: str  # cpu | cuda | mps

    def describe(self) -> str:
        """The config as JSON, where the run goes and where --resume's network comes from (`--dry-run`)."""
        ds = self.dataset
        text = (f"{to_json(self.config)}\nRun directory: {self.run_dir}  (dataset {ds.name}: {len(ds)} images, "
                f"{ds.resolution}px, {ds.num_channels} channel(s), {ds.c_dim} classes)")
        return text + (f"\nResume from: {pretrained.describe(self.resume)}" if self.resume is not None else "")


def plan(data: str | None = None, *, outdir: str | Path = "runs", name: str | None = None, new: bool = False,
         device: str = "auto", gpus: int | None = None, resolution: int | None = None,
         metrics: str | list[str] | tuple[str, ...] | None = None, **options) -> RunPlan:
    """Resolve `adagan train`'s options without training anything.

    data: dataset zip or folder, or builtin:twemoji[/GROUP] (None: config.DEFAULT_DATA); resolution
    picks the built-in's size. device "auto": CUDA when available. gpus: processes (under torchrun:
    its world size). metrics: names or a comma-separated string ("none": no metrics). Every other
    option is a keyword of presets.for_training (preset, batch, gamma, kimg, aug, p, ..., overrides).
    """
    device, gpus = _device_and_gpus(device, gpus)
    options["resume"] = _default_resume(options.get("resume"), data, device, resolution, options)
    data = data or DEFAULT_DATA
    dataset = open_dataset(data, resolution=resolution, use_labels=options.get("cond", False),
                           mirror=options.get("mirror", False), subset=options.get("subset"),
                           seed=options.get("seed") or 0)
    config = for_training(dataset, device=device, gpus=gpus, data=data,
                          metrics=None if metrics is None else metric_names(metrics), **options)
    resume = options.get("resume")
    run_dir = run_dir_for(outdir, run_name(config, dataset.name, resume) if name is None else name, new)
    resuming = bool(checkpoint.list_states(run_dir))
    if resume is not None and not resuming:
        _check_resume_fits(resume, config)
    return RunPlan(config, dataset, run_dir, resuming, resume, device)


def _check_resume_fits(resume: str, config: TrainConfig) -> None:
    """A --resume network that is already on this machine (a file, a built-in one, a cached download) must
    fit the run's networks: said at planning time, so the dry run says it too. A name or URL not yet
    downloaded is checked when the run has fetched it."""
    from adagan.training.transfer import check_fit

    path = pretrained.parse(resume).path
    if path.is_file():
        check_fit(path, config.G, config.D, label=str(resume))


def _default_resume(resume: str | None, data: str | None, device: str, resolution: int | None,
                    options: dict) -> str | None:
    """The network a run starts from. "none" (any case; the official train.py's "noresume") starts from scratch.
    Without --data and --resume, the default demo fine-tunes DEFAULT_RESUME when it fits (the `cpu` preset at
    32 px, unconditional) and this installation has it: from noise, 40 kimg on the smileys end in every hue
    (docs/training.md "What the default run shows"); from the built-in network, in the smileys' colours."""
    if resume is not None:
        return None if str(resume).strip().lower() in ("none", "noresume") else resume
    preset = options.get("preset") or ("cpu" if device == "cpu" else "auto")
    if data is not None or preset != "cpu" or resolution not in (None, 32) or options.get("cond"):
        return None
    return DEFAULT_RESUME if pretrained.parse(DEFAULT_RESUME).path.is_file() else None


def train(data: str | None = None, *, progress_bar: bool = False, tick_hooks=(), threads: int | None = None,
          **options) -> dict | None:
    """Train as `adagan train` does, from Python: same options as `plan`, same run directory, the same
    exact resume. tick_hooks: see loop.training_loop; threads: CPU threads per process (None: adapt to
    the machine, see adagan.runtime). Returns the summary of the training loop (None when spawned over
    several GPUs)."""
    return launch(plan(data, **options), progress_bar=progress_bar, tick_hooks=tick_hooks, threads=threads)


def _device_and_gpus(device: str, gpus: int | None) -> tuple[str, int]:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is visible; use --device cpu")
    world_env = distributed.env_world_size()
    gpus = world_env if world_env > 1 else 1 if gpus is None else gpus
    check_gpus(gpus)
    if device == "cuda" and gpus > torch.cuda.device_count():
        raise ConfigError(f"--gpus {gpus}: only {torch.cuda.device_count()} GPU(s) visible")
    return device, gpus


MAX_NAME = 200  # characters of a run directory name


def run_dir_for(outdir: str | Path, name: str, new: bool) -> Path:
    """`<outdir>/<name>`; with `new`, the first free `<name>-2`, `-3`, ... when that exists."""
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name) or name in (".", ".."):
        raise ConfigError(f"--name {name!r} may only contain letters, digits and . _ + - (and not be empty, . or ..)")
    if len(name) > MAX_NAME:
        raise ConfigError(f"--name is {len(name)} characters long; at most {MAX_NAME} (file systems limit a name "
                          "to 255 bytes and the run adds suffixes)")
    outdir = Path(outdir)
    for parent in (outdir, *outdir.parents):  # the deepest existing folder must be a folder we can write in
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--outdir {outdir}: {parent} is not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(f"--outdir {outdir}: no permission to write in {parent}")
            break
    run_dir = outdir / name
    if new and run_dir.exists():
        i = 2
        while (outdir / f"{name}-{i}").exists():
            i += 1
        run_dir = outdir / f"{name}-{i}"
    return run_dir


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker process needs to train; `dataset` only when it runs in the planning process."""

    config: TrainConfig
    run_dir: str
    resume: str | None  # the --resume network's file (downloaded and imported when it was a name or URL)
    device: str
    progress_bar: bool
    dataset: Any = None
    tick_hooks: tuple = ()  # functions hook(trainer, record); picklable when spawned
    threads: int | None = None  # CPU threads per process; None = adapt (adagan.runtime.ThreadGovernor)
    resume_label: str | None = None  # --resume as snapshots record it: builtin:NAME, a name, a URL, a file's path


def launch(plan: RunPlan, *, progress_bar: bool = False, tick_hooks=(), threads: int | None = None) -> dict | None:
    """Create the run directory and train: in this process, in `gpus` spawned processes, or as one rank
    of a torchrun group. Returns the training summary when this process trained."""
    resume = label = None
    if plan.resume is not None:
        resume = str(pretrained.resolve_network(plan.resume))  # a name or URL: downloaded and imported once
        read_metadata(resume)  # fail early with a clear message
        source = pretrained.parse(plan.resume)
        label = str(source.path.resolve()) if source.kind == "file" else source.spec
    try:
        plan.run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the run directory {plan.run_dir}: {e.strerror or e}; choose another "
                          "--outdir") from None
    spec = RunSpec(plan.config, str(plan.run_dir), resume, plan.device, progress_bar, plan.dataset,
                   tuple(tick_hooks), threads, label)
    if distributed.env_world_size() > 1:  # started by torchrun: this process is one rank
        ctx = distributed.init_from_env(spec.device)
        try:
            summary = _worker(ctx, spec)
            distributed.barrier(ctx)  # see distributed._spawned
        finally:
            distributed.shutdown()
        return summary
    if plan.config.gpus > 1:  # spawned processes open their own dataset (it does not travel)
        spec = dataclasses.replace(spec, dataset=None)
    return distributed.launch(plan.config.gpus, spec.device, _worker, spec)


def _worker(ctx: distributed.Context, spec: RunSpec) -> dict:
    config = spec.config
    iteration_hooks = ()
    if ctx.device.type == "cpu":
        # Processes of one run share the cores; within that share, use what other programs leave free.
        governor = ThreadGovernor(spec.threads, limit=max(cpu_count() // ctx.world_size, 1),
                                  log=(lambda msg: print(msg, file=sys.stderr, flush=True)) if ctx.is_main else None)
        governor.start()
        iteration_hooks = (lambda t: stats.report("Resources/threads", governor.maybe_update()),)
    dataset = spec.dataset
    if dataset is None:
        dataset = open_dataset(config.data, resolution=config.G.img_resolution, use_labels=config.cond,
                               mirror=config.mirror, subset=config.subset, seed=config.seed)
    metrics_fn = _metrics_fn(ctx, config) if config.metrics else None
    return training_loop(config, ctx, Path(spec.run_dir), dataset,
                         resume_weights=Path(spec.resume) if spec.resume else None, resume_label=spec.resume_label,
                         progress_bar=spec.progress_bar, metrics_fn=metrics_fn, tick_hooks=spec.tick_hooks,
                         iteration_hooks=iteration_hooks)


def _metrics_fn(ctx: distributed.Context, config: TrainConfig):
    collectives = distributed.Collectives(ctx) if ctx.distributed else None

    def run(snapshot_path, G_ema):
        with use_collectives(collectives):
            return evaluate_snapshot(snapshot_path, G_ema, metrics=list(config.metrics), data=config.data,
                                     resolution=config.G.img_resolution, device=ctx.device, rank=ctx.rank,
                                     world_size=ctx.world_size, subset=config.subset, seed=config.seed)

    return run
