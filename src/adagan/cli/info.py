"""`adagan info FILE`: what a network file holds, read without building anything."""

import json

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def cli(path, as_json):
    """Show the networks, configs and training progress stored in a .safetensors file.

    \b
    Example:
      adagan info runs/twemoji32-cpu-ada-3f9c1a/network-snapshot-000120.safetensors
    """
    from adagan.io import read_metadata

    meta = read_metadata(path)
    if as_json:
        click.echo(json.dumps(meta, indent=2, sort_keys=True))
        return
    g = meta.get("config.G") or {}
    d = meta.get("config.D") or {}
    click.echo(f"networks: {', '.join(meta.get('networks', []))}")
    if g:
        click.echo(f"G: {g['img_resolution']}px, {g['img_channels']} channel(s), z_dim {g['z_dim']}, "
                   f"w_dim {g['w_dim']}, c_dim {g['c_dim']}, channel_base {g['channel_base']}, "
                   f"channel_max {g['channel_max']}, mapping layers {g['map_layers']}")
    if d:
        click.echo(f"D: {d['architecture']}, mbstd group {d['mbstd_group_size']}, c_dim {d['c_dim']}")
    config = meta.get("train_config")
    if config:
        click.echo(f"trained with: --cfg {config['cfg']}, data {config.get('data') or '-'}, batch {config['batch']}, "
                   f"gamma {config['loss']['r1_gamma']:g}, aug {config['augment']['mode']}")
    if "meta.kimg" in meta:
        click.echo(f"kimg: {meta['meta.kimg']:g}")
