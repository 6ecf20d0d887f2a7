"""`adagan train`: parse flags, resolve the config, pick the run directory, launch."""

from __future__ import annotations

import dataclasses
import sys

import click

from adagan.errors import ConfigError

AUG_MODES = ("ada", "fixed", "noaug")
# The default demo: limited data (170 images), where ADA matters (docs/results.md).
DEFAULT_DATA = "builtin:twemoji/smileys"


def _overrides(extra: list[str]) -> list[str]:
    """`--section.field=value` or `--section.field value` pairs from the unparsed arguments."""
    out, i = [], 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--"):
            raise ConfigError(f"unexpected argument {tok!r}; see `adagan train --help` (config fields are set as "
                              "--section.field=value, e.g. --loss.r1_gamma=0.5)")
        if "=" in tok:
            out.append(tok[2:])
        elif i + 1 < len(extra):
            out.append(f"{tok[2:]}={extra[i + 1]}")
            i += 1
        else:
            raise ConfigError(f"{tok} needs a value")
        i += 1
    return out


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                 "help_option_names": ["-h", "--help"]})
@click.option("--data", default=None, metavar="PATH|builtin:twemoji[/GROUP]",
              help="Dataset zip or folder (see `adagan dataset`), builtin:twemoji (4,009 emoji) or one group of "
                   f"it. [default: {DEFAULT_DATA}]")
@click.option("--outdir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Where run directories are created.")
@click.option("--name", default=None, help="Run directory name (default: derived from the data and settings).")
@click.option("--new", is_flag=True, help="Start a fresh run directory even if this run exists (default: resume).")
@click.option("--cfg", default=None, type=click.Choice(["auto", "stylegan2", "paper256", "paper512", "paper1024",
                                                        "cifar", "cpu"]),
              help="Preset (default: cpu without a GPU, auto with one).")
@click.option("--gpus", default=None, type=int, help="Processes (GPUs) on this machine. [default: 1]")
@click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda", "mps"]), show_default=True)
@click.option("--resolution", default=None, type=int, help="Resolution of the built-in dataset (32 or 64).")
@click.option("--batch", default=None, type=int, help="Total batch size (default: the preset's).")
@click.option("--batch-gpu", default=None, type=int, help="Per-process batch; gradients accumulate to --batch.")
@click.option("--gamma", default=None, type=float, help="R1 weight (default: the preset's).")
@click.option("--kimg", default=None, type=float, help="Training length in thousands of real images.")
@click.option("--max-minutes", default=None, type=float,
              help="Stop after this many minutes (the cpu preset's default is 30 unless --kimg is given).")
@click.option("--aug", default="ada", type=click.Choice(AUG_MODES), show_default=True,
              help="ada: adaptive p; fixed: p = --p; noaug: no augmentation.")
@click.option("--p", "aug_p", default=None, type=float, help="Augmentation probability for --aug fixed.")
@click.option("--target", default=None, type=float, help="ADA target for r_t. [default: 0.6]")
@click.option("--augpipe", default=None, type=click.Choice(["blit", "geom", "color", "filter", "noise", "cutout",
                                                            "bg", "bgc", "bgcf", "bgcfn", "bgcfnc"]),
              help="Augmentations used. [default: bgc]")
@click.option("--mirror", is_flag=True, help="Add x-flipped copies of the dataset.")
@click.option("--cond", is_flag=True, help="Train a class-conditional model (needs dataset labels).")
@click.option("--subset", default=None, type=int, help="Train on a seeded random subset of N images.")
@click.option("--resume", default=None, type=click.Path(dir_okay=False),
              help="Start from this network's weights (transfer learning: ada_kimg 100, no EMA ramp-up).")
@click.option("--freezed", default=None, type=int, help="Freeze-D: number of top D layers not trained.")
@click.option("--tick", default=None, type=float, help="Progress interval in kimg. [default: 4]")
@click.option("--snap", default=None, type=int, help="Snapshot every N ticks.")
@click.option("--metrics", default=None,
              help="Comma-separated metrics at each snapshot, e.g. kid1k,fid1k, or none. [default: none]")
@click.option("--seed", default=None, type=int, help="Random seed. [default: 0]")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and run directory, then exit.")
@click.pass_context
def cli(ctx, data, outdir, name, new, cfg, gpus, device, resolution, batch, batch_gpu, gamma, kimg, max_minutes,
        aug, aug_p, target, augpipe, mirror, cond, subset, resume, freezed, tick, snap, metrics, seed, dry_run):
    """Train StyleGAN2-ADA on a folder of images.

    With no arguments: the `cpu` preset on the 170 smiley emoji of the built-in
    Twemoji set (builtin:twemoji/smileys, 32x32: limited data), for about 30
    minutes on a 2-core CPU. Rerunning the same command resumes the same run;
    Ctrl-C saves the state first. Any config field can be set as --section.field=value.

    \b
    Examples:
      adagan train
      adagan train --data mydata.zip --cfg auto --kimg 5000 --mirror
      adagan train --data mydata.zip --resume pretrained.safetensors --freezed 10
      adagan train --data cifar.zip --cfg cifar --cond --loss.r1_gamma=0.02 --dry-run
    """
    import torch

    from adagan import config as C
    from adagan.data import open_dataset
    from adagan.training import distributed
    from adagan.training.run import RunSpec, launch_training, prepare_run_dir, run_name

    overrides = _overrides(ctx.args)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is visible; use --device cpu")
    world_env = distributed.env_world_size()
    if world_env > 1:
        gpus = world_env
    gpus = 1 if gpus is None else gpus
    if gpus < 1:
        raise ConfigError("--gpus must be at least 1")
    if device == "cuda" and gpus > torch.cuda.device_count():
        raise ConfigError(f"--gpus {gpus}: only {torch.cuda.device_count()} GPU(s) visible")
    if cfg is None:
        cfg = "cpu" if device == "cpu" else "auto"

    data = data or DEFAULT_DATA
    dataset = open_dataset(data, resolution=resolution, use_labels=cond, mirror=mirror, subset=subset,
                           seed=seed or 0)
    if cond and dataset.c_dim == 0:
        raise ConfigError(f"--cond needs labels, but {dataset.name} has none; create the dataset with "
                          "`adagan dataset --labels subfolders` (or drop --cond)")
    tc = C.resolve(cfg, dataset.resolution, img_channels=dataset.num_channels, c_dim=dataset.c_dim, gpus=gpus)

    changes: dict = {"data": data, "mirror": mirror, "cond": cond, "subset": subset}
    if batch is not None:
        if batch < gpus or batch % gpus:
            raise ConfigError(f"--batch {batch} must be a positive multiple of --gpus {gpus}")
        changes["batch"] = batch
        changes["batch_gpu"] = min(tc.batch_gpu, batch // gpus)
    if batch_gpu is not None:
        changes["batch_gpu"] = batch_gpu
    if kimg is not None:
        if kimg <= 0:
            raise ConfigError("--kimg must be positive")
        changes["kimg"] = kimg
        changes["max_minutes"] = None
    if max_minutes is not None:
        changes["max_minutes"] = max_minutes if max_minutes > 0 else None
    for key, value in (("freezed", freezed), ("tick_kimg", tick), ("snap_ticks", snap), ("seed", seed)):
        if value is not None:
            changes[key] = value
    if metrics is not None:
        changes["metrics"] = _metric_names(metrics)
    tc = dataclasses.replace(tc, **changes)
    if gamma is not None:
        tc = dataclasses.replace(tc, loss=dataclasses.replace(tc.loss, r1_gamma=gamma))
    aug_changes: dict = {"mode": aug}
    if aug_p is not None:
        if not 0 <= aug_p <= 1:
            raise ConfigError(f"--p must be in [0, 1], got {aug_p}")
        aug_changes["p"] = aug_p
    elif aug == "fixed":
        raise ConfigError("--aug fixed needs --p (e.g. --p 0.2)")
    if target is not None:
        aug_changes["target"] = target
    if augpipe is not None:
        aug_changes["augpipe"] = augpipe
    if resume is not None:
        # Transfer learning as in the official train.py (314-315): p adapts 5x faster (ada_kimg 100, or the
        # preset's own if that is faster already) and G_ema averages over ema_kimg from the first image (no
        # ramp-up: the pretrained G is already good).
        aug_changes["ada_kimg"] = min(tc.augment.ada_kimg, 100.0)
        tc = dataclasses.replace(tc, ema_rampup=None)
    tc = dataclasses.replace(tc, augment=dataclasses.replace(tc.augment, **aug_changes))
    tc = C.apply_overrides(tc, overrides)
    _validate(tc, dataset)

    name = name or run_name(tc, dataset.name, resume)
    if dry_run:
        click.echo(C.to_json(tc))
        click.echo(f"Run directory: {outdir}/{name}  (dataset {dataset.name}: {len(dataset)} images, "
                   f"{dataset.resolution}px, {dataset.num_channels} channel(s), {dataset.c_dim} classes)")
        return
    if resume is not None:
        from adagan.io import read_metadata

        read_metadata(resume)  # fail early with a clear message
    run_dir, resuming = prepare_run_dir(outdir, name, new)
    if resuming:
        click.echo(f"Found a training state in {run_dir}: resuming (use --new for a fresh run).")
    spec = RunSpec(cfg=tc, run_dir=str(run_dir), data=data, resolution=resolution, resume=resume, device=device,
                   progress_bar=sys.stderr.isatty())
    launch_training(spec)


def _metric_names(text: str) -> tuple[str, ...]:
    """`--metrics` value -> metric names; "none" (any case) or "" = no snapshot metrics, as in the official
    train.py. Names are checked now, so a typo fails before training instead of at the first snapshot."""
    if text.strip().lower() in ("", "none"):
        return ()
    from adagan.metrics.evaluate import parse_metrics

    return tuple(spec.name for spec in parse_metrics(text))


def _validate(tc, dataset) -> None:
    per_rank = tc.batch // tc.gpus
    if tc.batch % tc.gpus:
        raise ConfigError(f"batch {tc.batch} is not divisible by gpus {tc.gpus}")
    if tc.batch_gpu < 1 or per_rank % tc.batch_gpu:
        raise ConfigError(f"batch_gpu {tc.batch_gpu} must divide the per-process batch {per_rank}")
    if tc.G.img_resolution != dataset.resolution or tc.G.img_channels != dataset.num_channels:
        raise ConfigError("G.img_resolution/img_channels must match the dataset "
                          f"({dataset.resolution}px, {dataset.num_channels} channels)")
    if tc.augment.mode not in AUG_MODES:
        raise ConfigError(f"augment.mode must be one of {AUG_MODES}")
    if len(dataset) < tc.batch // tc.gpus:
        raise ConfigError(f"the dataset has {len(dataset)} images, fewer than one batch ({tc.batch}); add images "
                          "or lower --batch")
    if tc.freezed < 0:
        raise ConfigError("--freezed must be >= 0")
    for key in ("pl_interval", "r1_interval"):
        value = getattr(tc.loss, key)
        if value is not None and value < 0:
            raise ConfigError(f"--loss.{key} must be >= 1 (lazy) or 0/none (every step, not lazy), got {value}")
