"""`adagan info FILE`: what a network file holds, read without building anything."""

import json

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", metavar="NETWORK")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def cli(path, as_json):
    """Show the networks, configs and training progress stored in a .safetensors file (or in the network
    that builtin:NAME, a pretrained name such as ffhq256, or a URL names: docs/using.md).

    \b
    Example:
      adagan info runs/twemoji32-cpu-ada-3f9c1a/network-snapshot-000120.safetensors
    """
    from adagan.errors import CheckpointError
    from adagan.io import network_config, read_metadata
    from adagan.netfiles import started_from, trained_kimg
    from adagan.pretrained import parse, resolve_network

    named = parse(path).kind != "file"  # builtin:NAME, a pretrained name or a URL: say which file it is
    path = resolve_network(path)
    meta = read_metadata(path)
    if as_json:
        click.echo(json.dumps(meta, indent=2, sort_keys=True))
        return
    if named:
        click.echo(f"file: {path}")
    click.echo(f"networks: {', '.join(meta.get('networks', []))}")
    for name in ("G", "D"):  # each config checked as loading would check it; a damaged one is named, not shown
        if f"config.{name}" not in meta:
            continue
        try:
            c = network_config(name, meta[f"config.{name}"], path)
        except CheckpointError as e:
            click.echo(f"{name}: damaged config: {str(e).split(': ', 1)[-1]}")
            continue
        if name == "G":
            click.echo(f"G: {c.architecture}, {c.img_resolution}px, {c.img_channels} channel(s), z_dim {c.z_dim}, "
                       f"w_dim {c.w_dim}, c_dim {c.c_dim}, channel_base {c.channel_base}, channel_max "
                       f"{c.channel_max}, mapping layers {c.map_layers}")
        else:
            click.echo(f"D: {c.architecture}, mbstd group {c.mbstd_group_size}, c_dim {c.c_dim}")
    config = meta.get("train_config")
    if isinstance(config, dict):
        def get(*keys):
            value = config
            for k in keys:
                value = value.get(k) if isinstance(value, dict) else None
            return "?" if value is None or isinstance(value, dict | list) else value

        click.echo(f"trained with: --cfg {get('cfg')}, data {get('data') or '-'}, batch {get('batch')}, "
                   f"gamma {get('loss', 'r1_gamma')}, aug {get('augment', 'mode')}")
    if isinstance(meta.get("meta.kimg"), int | float):
        line, origin = f"kimg: {meta['meta.kimg']:g}", started_from(meta)
        if origin is not None:
            total = trained_kimg(meta)
            line += f", started from {origin}" + (
                f" ({meta['meta.resumed_from']['kimg']:g} kimg): {total:g} kimg in all" if total is not None
                else " (its training not recorded)")
        click.echo(line)
