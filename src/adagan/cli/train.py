"""`adagan train`: parse the flags, plan the run (adagan.training.run.plan), print or train."""

from __future__ import annotations

import sys

import click

from adagan.cli import threads_option
from adagan.config import AUGMENT_MODES, AUGMENT_SHORTCUTS, AUGPIPES
from adagan.errors import ConfigError
from adagan.presets import DEFAULT_DATA, PRESETS


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


# An official boolean flag: `--mirror`, `--mirror=1`, `--mirror 0`, `--mirror=true` (official train.py: BOOL values).
BOOL_SWITCH = dict(type=click.BOOL, is_flag=False, flag_value=True, default=None, metavar="[BOOL]")


def _performance_overrides(*, fp32, nhwc, nobench, allow_tf32) -> list[str]:
    """The official --fp32/--nhwc/--nobench/--allow-tf32 as config overrides (before the user's own, which win)."""
    out = []
    if fp32:  # official: num_fp16_res = 0 and conv_clamp = None in G and D
        out += ["G.num_fp16_res=0", "D.num_fp16_res=0", "G.conv_clamp=none", "D.conv_clamp=none"]
    if nhwc is not None:
        out.append(f"channels_last={nhwc}")
    if nobench is not None:
        out.append(f"cudnn_benchmark={not nobench}")
    if allow_tf32 is not None:
        out.append(f"allow_tf32={allow_tf32}")
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
@click.option("--cfg", "--preset", "preset", default=None, type=click.Choice(list(PRESETS)),
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
@click.option("--aug", default="ada", type=click.Choice([*AUGMENT_MODES, *AUGMENT_SHORTCUTS]), show_default=True,
              help="ada: adaptive p; fixed: p = --p; noaug: no augmentation; diffaug: DiffAugment, the same as "
                   "--aug fixed --p 1 --augpipe diffaug.")
@click.option("--p", default=None, type=float, help="Augmentation probability for --aug fixed.")
@click.option("--target", default=None, type=float, help="ADA target for r_t. [default: 0.6]")
@click.option("--augpipe", default=None, type=click.Choice(list(AUGPIPES)), help="Augmentations used. [default: bgc]")
@click.option("--lecam", default=None, type=float,
              help="LeCam regularization weight (Tseng et al. 2021) added to D's loss; 0 = off. [default: 0]")
@click.option("--mirror", **BOOL_SWITCH, help="Add x-flipped copies of the dataset (--mirror or --mirror=1).")
@click.option("--cond", **BOOL_SWITCH, help="Train a class-conditional model (needs dataset labels).")
@click.option("--subset", default=None, type=int, help="Train on a seeded random subset of N images.")
@click.option("--resume", default=None, metavar="NETWORK",
              help="Start from this network's weights (transfer learning: ada_kimg 100, no EMA ramp-up): a "
                   ".safetensors file, builtin:twemoji32, a pretrained name (ffhq256, celebahq256, lsundog256, "
                   "ffhq512, ffhq1024, ...) or an http(s) URL of an official pickle (docs/using.md).")
@click.option("--freezed", default=None, type=int, help="Freeze-D: number of top D layers not trained.")
@click.option("--tick", default=None, type=float, help="Progress interval in kimg. [default: 4]")
@click.option("--snap", default=None, type=int, help="Snapshot every N ticks.")
@click.option("--metrics", default=None,
              help="Comma-separated metrics at each snapshot, e.g. kid1k,fid1k, or none. [default: none]")
@click.option("--seed", default=None, type=int, help="Random seed. [default: 0]")
@click.option("-n", "--dry-run", is_flag=True, help="Print the resolved config and run directory, then exit.")
# The official train.py's performance options, with its meaning (docs/training.md, "Official flags").
@click.option("--fp32", **BOOL_SWITCH, help="No fp16 layers and no activation clamping: --G.num_fp16_res=0 "
                                            "--D.num_fp16_res=0 --G.conv_clamp=none --D.conv_clamp=none.")
@click.option("--nhwc", **BOOL_SWITCH, help="NHWC memory layout on CUDA: --channels_last=true.")
@click.option("--nobench", **BOOL_SWITCH, help="No cuDNN benchmarking: --cudnn_benchmark=false.")
@click.option("--allow-tf32", **BOOL_SWITCH, help="TF32 matmuls and convolutions on CUDA: --allow_tf32=true.")
@click.option("--workers", default=None, hidden=True, help="Not available; see the error message.")
@threads_option
@click.pass_context
def cli(ctx, outdir, name, new, dry_run, threads, fp32, nhwc, nobench, allow_tf32, workers, **options):
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
      adagan train --data faces.zip --resume ffhq256 --dry-run
      adagan train --data cifar.zip --cfg cifar --cond --loss.r1_gamma=0.02 --dry-run
    """
    from adagan.training.run import launch, plan

    if workers is not None:
        raise ConfigError("--workers: adagan has no DataLoader workers to set; up to 8 threads of the training "
                          "process decode the images, which stay in memory when they fit (docs/training.md)")
    options["mirror"], options["cond"] = bool(options["mirror"]), bool(options["cond"])
    official = _performance_overrides(fp32=fp32, nhwc=nhwc, nobench=nobench, allow_tf32=allow_tf32)
    run = plan(outdir=outdir, name=name, new=new, overrides=official + _overrides(ctx.args), **options)
    if dry_run:
        click.echo(run.describe())
        return
    if run.resuming:
        click.echo(f"Found a training state in {run.run_dir}: resuming (use --new for a fresh run).")
    launch(run, progress_bar=sys.stderr.isatty(), threads=threads)
