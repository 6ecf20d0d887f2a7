"""`adagan mix`: the style-mixing grid."""

from pathlib import Path

import click

from adagan.cli import CTX, threads_option, use_threads
from adagan.errors import ConfigError


@click.command(context_settings=CTX)
@click.option("--network", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Network file (.safetensors).")
@click.option("--rows", required=True, metavar="LIST", help="Row seeds (their images form the left column).")
@click.option("--cols", required=True, metavar="LIST", help="Column seeds (their images form the top row).")
@click.option("--styles", default="0-6", show_default=True, metavar="LIST",
              help="Indices of the ws taken from the column seed (0 = coarsest layer).")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--class", "class_idx", type=int, default=None, metavar="K", help="Class for a conditional network.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("mix.png"), show_default=True,
              help="Grid PNG.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when available).")
@threads_option
def cli(network, rows, cols, styles, truncation_psi, class_idx, noise_mode, out, device, threads):
    """Style mixing: each cell is its row seed with the `--styles` layers taken from its column seed.

    \b
    Example:
      adagan mix --network snapshot.safetensors --rows 1,2,3 --cols 10,11 --styles 0-3 --out mix.png
    """
    from adagan import inference as inf

    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ConfigError(f"--out {out} must end in .png or .jpg")
    row_seeds, col_seeds = inf.parse_range(rows, "rows"), inf.parse_range(cols, "cols")
    style_list = inf.parse_range(styles, "styles")
    G = inf.load_generator(network, device)
    use_threads(threads, next(G.parameters()).device)
    grid = inf.style_mix(G, row_seeds, col_seeds, style_list, c=class_idx, truncation_psi=truncation_psi,
                         noise_mode=noise_mode)
    out.parent.mkdir(parents=True, exist_ok=True)
    inf.save_image(grid, out)
    click.echo(f"Wrote {out} ({len(row_seeds)} rows x {len(col_seeds)} columns, styles {styles})")
