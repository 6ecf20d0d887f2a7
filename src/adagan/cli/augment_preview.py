"""`adagan augment-preview`: see what the discriminator sees."""

from pathlib import Path

import click

from adagan.cli import CTX
from adagan.config import AUGPIPES
from adagan.errors import ConfigError
from adagan.limits import check_choice, check_options


@click.command(context_settings=CTX)
@click.option("--data", default="builtin:twemoji", show_default=True, metavar="PATH|builtin:twemoji",
              help="Dataset zip or folder made by `adagan dataset`, or a built-in dataset.")
@click.option("--augpipe", default="bgc", show_default=True,
              help=f"Augmentation preset: {', '.join(AUGPIPES)}.")
@click.option("--p", "p", type=float, default=0.5, show_default=True, help="Augmentation probability.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("augment-preview.png"),
              show_default=True, help="Grid PNG: a row of reals, then augmented copies. The per-transform "
                                      "sheet is written beside it as <name>-transforms.png.")
@click.option("--num", type=int, default=8, show_default=True, help="Real images per row.")
@click.option("--rows", type=int, default=4, show_default=True, help="Rows of augmented copies.")
@click.option("--resolution", type=int, default=None, help="Resolution for built-in data (default 32).")
@click.option("--seed", type=int, default=0, show_default=True, help="Picks the images and the draws.")
def cli(data, augpipe, p, out, num, rows, resolution, seed):
    """Write a grid of real images and their augmented versions, and a sheet of every transform.

    \b
    Example:
      adagan augment-preview --data builtin:twemoji --augpipe bgc --p 0.5 --out grid.png
    """
    import numpy as np

    from adagan.augment.preview import augment_grid, transform_sheet
    from adagan.data import open_dataset
    from adagan.ops.image import to_float

    check_choice("--augpipe", augpipe, AUGPIPES)
    check_options("augment-preview", p=p, num=num, rows=rows, seed=seed)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out} must end in .png")
    ds = open_dataset(data, resolution=resolution)
    idx = np.random.default_rng(seed).choice(len(ds), size=min(num, len(ds)), replace=False)
    imgs, _ = ds.get_batch(sorted(idx.tolist()))
    reals = to_float(imgs)
    out.parent.mkdir(parents=True, exist_ok=True)
    augment_grid(reals, augpipe, p, rows=rows, seed=seed).save(out)
    sheet_path = out.with_name(out.stem + "-transforms.png")
    transform_sheet(reals[:1], augpipe).save(sheet_path)
    click.echo(f"Wrote {out} ({len(idx)} reals x {rows} augmented rows at p={p}) and {sheet_path}")
