"""`adagan mix`: the style-mixing grid."""

from pathlib import Path

import click

from adagan.cli import CTX, class_option, device_options, network_option, use_threads
from adagan.errors import ConfigError
from adagan.limits import check_options, check_work

MAX_SEEDS = 1024  # rows or columns of one grid
MAX_GRID_PIXELS = 2**28  # the grid is one image in memory (about 16384 x 16384)


@click.command(context_settings=CTX)
@network_option()
@click.option("--rows", required=True, metavar="LIST", help="Row seeds (their images form the left column).")
@click.option("--cols", required=True, metavar="LIST", help="Column seeds (their images form the top row).")
@click.option("--styles", default="0-6", show_default=True, metavar="LIST",
              help="Indices of the ws taken from the column seed (0 = coarsest layer).")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@class_option
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Grid PNG. [default: mix.png]")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Instead of --out, as the official style_mixing.py: DIR/grid.png and every image as "
                   "DIR/ROW-COL.png (ROW-ROW.png and COL-COL.png: the seeds' own images).")
@device_options("10,000 cells")
def cli(network, rows, cols, styles, truncation_psi, class_idx, noise_mode, out, outdir, device, yes, threads):
    """Style mixing: each cell is its row seed with the `--styles` layers taken from its column seed.

    \b
    Example:
      adagan mix --network snapshot.safetensors --rows 1,2,3 --cols 10,11 --styles 0-3 --out mix.png
    """
    from adagan import inference as inf

    if out is not None and outdir is not None:
        raise ConfigError("give --out FILE (one grid) or --outdir DIR (grid.png and every image), not both")
    out = outdir / "grid.png" if outdir is not None else out or Path("mix.png")
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ConfigError(f"--out {out} must end in .png or .jpg")
    check_options("mix", trunc=truncation_psi)
    row_seeds, col_seeds = inf.parse_range(rows, "rows", MAX_SEEDS), inf.parse_range(cols, "cols", MAX_SEEDS)
    style_list = inf.parse_range(styles, "styles", 10_000)
    check_work("images", (len(row_seeds) + 1) * (len(col_seeds) + 1), yes)
    G = inf.load_generator(network, device)
    use_threads(threads, next(G.parameters()).device)
    side = G.img_resolution
    if (len(row_seeds) + 1) * (len(col_seeds) + 1) * side * side > MAX_GRID_PIXELS:
        raise ConfigError(f"a grid of {len(row_seeds) + 1} x {len(col_seeds) + 1} images of {side}px is larger than "
                          f"{MAX_GRID_PIXELS:,} pixels; ask for fewer --rows / --cols")
    grid = inf.style_mix(G, row_seeds, col_seeds, style_list, c=class_idx, truncation_psi=truncation_psi,
                         noise_mode=noise_mode)
    out.parent.mkdir(parents=True, exist_ok=True)
    inf.save_image(grid, out)
    if outdir is not None:
        _save_cells(grid, side, row_seeds, col_seeds, outdir)
    click.echo(f"Wrote {out} ({len(row_seeds)} rows x {len(col_seeds)} columns, styles {styles})"
               + (f" and its {len(row_seeds) * len(col_seeds) + len(set(row_seeds) | set(col_seeds))} images"
                  if outdir is not None else ""))


def _save_cells(grid, side: int, row_seeds, col_seeds, outdir: Path) -> None:
    """The grid's images by seed, named as the official style_mixing.py names them."""
    from adagan import inference as inf

    def cell(i: int, j: int):
        return grid[i * side: (i + 1) * side, j * side: (j + 1) * side]

    for j, c in enumerate(col_seeds):
        inf.save_image(cell(0, j + 1), outdir / f"{c}-{c}.png")
    for i, r in enumerate(row_seeds):
        inf.save_image(cell(i + 1, 0), outdir / f"{r}-{r}.png")
        for j, c in enumerate(col_seeds):
            inf.save_image(cell(i + 1, j + 1), outdir / f"{r}-{c}.png")
