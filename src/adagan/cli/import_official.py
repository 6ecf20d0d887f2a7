"""`adagan import-official`: convert NVIDIA StyleGAN2-ADA pickles to adagan files, running none of their code."""

from pathlib import Path

import click

from adagan.cli import CTX
from adagan.errors import ConfigError


@click.command(context_settings=CTX)
@click.option("--source", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.pkl",
              help="Official network-snapshot-*.pkl (stylegan2-ada-pytorch, or stylegan3 with --cfg=stylegan2).")
@click.option("--dest", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.safetensors",
              help="adagan network file to write.")
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
def cli(source, dest, force):
    """Convert an official StyleGAN2-ADA PyTorch pickle (G, D, G_ema) into an adagan network file.

    The pickle is read by a restricted unpickler: only tensors, numpy arrays and plain containers are
    rebuilt, the network source code stored inside the pickle is never run, and anything else is refused.

    \b
    Example:
      adagan import-official --source network-snapshot-025000.pkl --dest ffhq.safetensors
      adagan generate --network ffhq.safetensors --seeds 0-7 --trunc 0.7 --outdir out
      adagan train --data mydata.zip --resume ffhq.safetensors
    """
    from adagan.official import import_official

    if dest.suffix != ".safetensors":
        raise ConfigError(f"--dest {dest} must end in .safetensors")
    if dest.exists() and not force:  # as `adagan dataset`
        raise ConfigError(f"--dest {dest} already exists; pass --force to replace it or choose another name")
    nets = import_official(source, dest)
    G = nets.G_ema if nets.G_ema is not None else nets.G
    have = ", ".join(n for n in ("G", "D", "G_ema") if getattr(nets, n) is not None)
    desc = "no generator" if G is None else (
        f"{G.img_resolution}x{G.img_resolution}, {G.img_channels} channels, "
        f"{'c_dim ' + str(G.c_dim) if G.c_dim else 'unconditional'}")
    click.echo(f"Wrote {dest} ({have}; {desc})")
