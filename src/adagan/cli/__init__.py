"""Command-line interface: one thin module per subcommand (see main.py)."""

# click context settings shared by the subcommands: -h as well as --help, help text up to 110 columns.
CTX = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def threads_option(f):
    """`--threads N` for the commands that compute on the CPU (see adagan.runtime)."""
    import click

    return click.option("--threads", type=click.IntRange(1, 4096), default=None, metavar="N",
                        help="CPU threads. [default: $OMP_NUM_THREADS, else the cores other processes leave free, "
                             "re-checked while it runs]")(f)


def use_threads(threads: int | None, device) -> None:
    """Set the CPU thread count for a command that runs on `device` (nothing to do on a GPU)."""
    import torch

    if torch.device(device).type == "cpu":
        from adagan.runtime import ThreadGovernor

        ThreadGovernor(threads).start()


NETWORK_KINDS = ("builtin:twemoji32, a pretrained name (ffhq, metfaces, afhqcat, ffhq256, ...) or an http(s) URL of "
                 "an official pickle, downloaded once into the cache (docs/using.md)")


def network_option(what: str = "Network file (.safetensors)"):
    """`--network`: a file or any name adagan.pretrained resolves. A plain string, not click.Path, which would
    fold a URL's '//' into '/'."""
    import click

    return click.option("--network", required=True, type=str, metavar="NETWORK", help=f"{what}, {NETWORK_KINDS}.")


def class_option(f):
    """`--class K` for the commands that render a conditional network."""
    import click

    return click.option("--class", "class_idx", type=int, default=None, metavar="K",
                        help="Class for a conditional network.")(f)


def device_options(work: str):
    """`--device`, `--yes` (past `work`, docs/limits.md) and `--threads`: where a rendering command runs, and
    how much it may do unasked."""
    import click

    def apply(f):
        f = threads_option(f)
        f = click.option("--yes", is_flag=True, help=f"Go ahead with more than {work} (docs/limits.md).")(f)
        return click.option("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when available).")(f)

    return apply
