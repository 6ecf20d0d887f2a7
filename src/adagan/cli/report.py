"""`adagan report RUNDIR`: plots and an HTML page of a training run's progress."""

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def cli(run_dir):
    """Render RUN_DIR/report.png (losses, augment p, r_t, metrics vs kimg) and a
    self-contained RUN_DIR/report.html with the newest image grids.

    Training writes the report at every snapshot when matplotlib is installed.

    \b
    Example:
      adagan report runs/twemoji32-cpu-ada-3f9c1a
    """
    from adagan.report import write_report

    png, page = write_report(run_dir)
    click.echo(f"Wrote {png} and {page}")
