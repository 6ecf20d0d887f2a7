"""The `adagan` command: a click group whose subcommands load lazily.

Each subcommand lives in its own module `adagan.cli.<module>` that defines a
click command named `cli`. Loading lazily keeps `adagan --help` fast (no torch
import) and lets each subcommand be developed on its own.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from adagan.errors import AdaganError

# name -> module; a module that is not installed is simply not listed.
COMMANDS: dict[str, str] = {
    "train": "adagan.cli.train",
    "dataset": "adagan.cli.dataset",
    "augment-preview": "adagan.cli.augment_preview",
    "generate": "adagan.cli.generate",
    "mix": "adagan.cli.mix",
    "video": "adagan.cli.video",
    "project": "adagan.cli.project",
    "export": "adagan.cli.export",
    "import-official": "adagan.cli.import_official",
    "metrics": "adagan.cli.metrics",
    "fid": "adagan.cli.fid",
    "weights": "adagan.cli.weights",
    "report": "adagan.cli.report",
    "info": "adagan.cli.info",
    "studio": "adagan.cli.studio",
}


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(name for name, mod in COMMANDS.items() if _available(mod))

    def get_command(self, ctx, name):
        mod = COMMANDS.get(name)
        if mod is None or not _available(mod):
            return None
        return importlib.import_module(mod).cli


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="adagan")
def cli():
    """adagan: StyleGAN2 with adaptive discriminator augmentation (ADA).

    Train a generator on a small folder of images (`adagan train --data DIR`),
    then sample, interpolate, project, measure and export it.
    Run `adagan COMMAND --help` for each command's options.
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point: user-facing errors become one line on stderr, exit code 1."""
    try:
        cli.main(args=argv, prog_name="adagan", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except AdaganError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    except OSError as e:  # the environment: a full disk, a folder we may not write, a file that vanished
        where = f": {e.filename}" if e.filename else ""
        click.echo(f"Error: {e.strerror or e}{where} (check free space, permissions and the path)", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
