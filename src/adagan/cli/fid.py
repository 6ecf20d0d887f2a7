"""`adagan fid A B`: FID (and KID) between two image folders or zips."""

import click

from adagan.cli import threads_option, use_threads

device_option = click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda", "mps"]),
                             show_default=True, help="Where to run the detector.")


def resolve_device(device: str):
    import torch

    from adagan.errors import ConfigError

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is visible; use --device cpu")
    return torch.device(device)


def use_weights(*, inception=None, lpips=None) -> None:
    """Explicit weight paths given on the command line override the environment for this process."""
    import os

    from adagan.metrics.weights import INCEPTION, LPIPS, WEIGHTS

    for name, path in ((INCEPTION, inception), (LPIPS, lpips)):
        if path:
            os.environ[WEIGHTS[name].env] = str(path)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path_a")
@click.argument("path_b")
@click.option("--kid", is_flag=True, help="Also print KID (better than FID for small sets).")
@click.option("--num", type=int, default=None, help="Use only the first N images of each set [default: all].")
@device_option
@click.option("--batch", type=int, default=None, help="Images per detector batch [default: 32 CPU, 64 CUDA].")
@click.option("--inception", type=click.Path(dir_okay=False), default=None,
              help="Inception weights file (else $ADAGAN_INCEPTION, else the cache).")
@click.option("--no-cache", is_flag=True, help="Do not read or write cached features.")
@threads_option
def cli(path_a, path_b, kid, num, device, batch, inception, no_cache, threads):
    """Compare two sets of images (folders or zips, any resolution; both are
    resized to 299x299 for Inception), like pytorch-fid's command.

    FID has a large positive bias at small n: compare numbers only at the same
    n, and prefer --kid for a few hundred images.

    \b
    Example:
      adagan fid my_samples/ data/faces.zip --kid
    """
    from adagan.limits import check_options
    from adagan.metrics.evaluate import compare_datasets

    check_options("fid", num=num, batch=batch)
    use_weights(inception=inception)
    use_threads(threads, resolve_device(device))
    res = compare_datasets(path_a, path_b, kid=kid, num=num, device=resolve_device(device), batch_size=batch,
                           use_cache=not no_cache)
    click.echo(f"fid  {res['fid']:.6g}")
    if kid:
        click.echo(f"kid  {res['kid']:.6g}")
    click.echo(f"  ({int(res['num_a'])} vs {int(res['num_b'])} images)", err=True)
