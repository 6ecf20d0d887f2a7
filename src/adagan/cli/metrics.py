"""`adagan metrics`: FID/KID/precision-recall/PPL/IS/memorisation/augmentation leak of a saved generator."""

import click

from adagan.cli import network_option, threads_option, use_threads
from adagan.cli.fid import device_option, resolve_device, use_weights


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@network_option("Snapshot or network file (.safetensors) holding G_ema")
@click.option("--data", default=None, help="Training data: a dataset zip/folder or builtin:twemoji[@RES]. "
                                           "[default: the data the snapshot was trained on, as recorded in it]")
@click.option("--metrics", "metrics", default="fid1k_full,kid1k_full", show_default=True,
              help="Comma-separated: fid50k_full, kid50k_full, fid10k_full, kid10k_full, fid1k_full, kid1k_full, "
                   "pr50k3_full, pr1k3_full, ppl_wend (= ppl2_wend), ppl1k_wend, ppl_zfull, ppl_wfull, ppl_zend, "
                   "is50k, is1k, mem1k (memorisation), leak1k (augmentation leak: colour and geometry statistics "
                   "vs the reals', 0 = like the reals; no detector weights needed); docs/metrics.md.")
@click.option("--resolution", type=int, default=None, help="Dataset resolution (for built-in data).")
@device_option
@click.option("--batch", type=int, default=None, help="Images per detector batch [default: 32 CPU, 64 CUDA].")
@click.option("--inception", type=click.Path(dir_okay=False), default=None,
              help="Inception weights file (else $ADAGAN_INCEPTION, else the cache).")
@click.option("--lpips", type=click.Path(dir_okay=False), default=None,
              help="LPIPS-VGG16 weights file (else $ADAGAN_LPIPS, else the cache).")
@click.option("--no-cache", is_flag=True, help="Recompute real-image features instead of using the cache.")
@click.option("--subset", type=int, default=None,
              help="memNk: the training subset of --data (default: the snapshot's own --subset, if it was trained "
                   "with one and on the same --data).")
# The official calc_metrics.py's other options, with its meaning where adagan has it.
@click.option("--mirror", type=click.BOOL, is_flag=False, flag_value=True, default=None, metavar="[BOOL]",
              help="Official calc_metrics.py: x-flips in the real statistics. adagan's never have them: only 0.")
@click.option("--gpus", type=int, default=None, help="Official calc_metrics.py: processes. adagan metrics: 1.")
@click.option("--verbose", type=click.BOOL, is_flag=False, flag_value=True, default=None, metavar="[BOOL]",
              help="Progress while computing (0: none). [default: a bar on a terminal, else a line every 30 s]")
@threads_option
def cli(network, data, metrics, resolution, device, batch, inception, lpips, no_cache, subset, mirror, gpus, verbose,
        threads):
    """Evaluate a generator snapshot; print the results and append them to
    metric-NAME.jsonl next to the snapshot (for builtin:NAME, in the cache's
    pretrained/ folder: the package's own folder is not written to).

    Real-image statistics use the whole dataset (no x-flips) and are cached per
    dataset content, so re-running is cheap; memorisation (memNk) compares with
    the images the snapshot was trained on (its --subset of the data). Detector
    weights come from `adagan weights fetch`; leakNk needs none (docs/metrics.md,
    "Augmentation leak").

    \b
    Example:
      adagan weights fetch
      adagan metrics --network runs/x/network-snapshot-000200.safetensors \\
          --data builtin:twemoji --metrics kid1k_full,fid1k_full
    """
    from pathlib import Path

    from adagan.data import open_dataset
    from adagan.errors import ConfigError
    from adagan.io import load_network
    from adagan.limits import check_options
    from adagan.metrics.evaluate import append_results, compute_metrics, parse_metrics
    from adagan.pretrained import parse, pretrained_dir, resolve_network

    if mirror:
        raise ConfigError("--mirror=1: adagan's real-image statistics never include x-flips (docs/metrics.md); "
                          "drop --mirror")
    if gpus not in (None, 1):
        raise ConfigError(f"--gpus {gpus}: adagan metrics runs in one process; metrics on several GPUs run at "
                          "snapshots of `adagan train --gpus N --metrics ...`")
    specs = parse_metrics(metrics)
    check_options("metrics", batch=batch, subset=subset)
    data = data if data is not None else _training_data(network)
    dev = resolve_device(device)
    use_threads(threads, dev)
    use_weights(inception=inception, lpips=lpips)
    # Results go beside the file (for a name or URL: the cached one); a built-in network's lie in the
    # installed package, which may be read-only and is not ours to add files to: the cache takes them.
    builtin = parse(network).kind == "builtin"
    network = resolve_network(network)
    results_dir = pretrained_dir() if builtin else Path(network).parent
    G = load_network(network, which="G_ema", device=dev).eval().requires_grad_(False)
    dataset = open_dataset(data, resolution=resolution, use_labels=bool(G.c_dim), mirror=False)
    train_dataset = None
    if any(s.kind == "mem" for s in specs):
        subset, seed = _training_subset(network, data, subset)
        if subset is not None:
            train_dataset = open_dataset(data, resolution=resolution, use_labels=bool(G.c_dim), subset=subset,
                                         seed=seed)

    def show(spec, res: dict[str, float], seconds: float) -> None:
        for k, v in res.items():  # first: a folder that cannot be written to must not cost the result
            click.echo(f"{k:<24s} {v:.6g}")
        try:
            dest = append_results(Path(network), spec.name, res, seconds, dest_dir=results_dir)
        except OSError as e:
            click.echo(f"  ({seconds:.1f} s; not recorded: cannot append to metric-{spec.name}.jsonl in "
                       f"{results_dir}: {e.strerror or e})", err=True)
        else:
            click.echo(f"  ({seconds:.1f} s, appended to {dest})", err=True)

    # One call: FID and KID of the same size share the generated images' features.
    compute_metrics(G, dataset, specs, device=dev, batch_size=batch, progress=False if verbose is False else None,
                    use_cache=not no_cache,
                    on_result=show, train_dataset=train_dataset)


def _training_data(network) -> str:
    """--data when not given: the snapshot's train_config.data (as the official calc_metrics.py looks it up)."""
    import json

    from adagan.errors import ConfigError
    from adagan.io import read_metadata

    raw = read_metadata(network).get("train_config")
    try:
        cfg = json.loads(raw) if isinstance(raw, str) else (raw or {})
    except ValueError:
        cfg = {}
    data = cfg.get("data") if isinstance(cfg, dict) else None
    if not isinstance(data, str) or not data:
        raise ConfigError(f"{network} does not record its training data; pass --data")
    return data


def _training_subset(network, data: str, subset: int | None) -> tuple[int | None, int]:
    """(subset, seed) of the images the snapshot was trained on: --subset if given, else its config's."""
    import json

    from adagan.io import read_metadata

    raw = read_metadata(network).get("train_config")
    cfg = json.loads(raw) if isinstance(raw, str) else (raw or {})
    seed = int(cfg.get("seed") or 0) if isinstance(cfg, dict) else 0
    if subset is not None:
        return subset, seed
    if isinstance(cfg, dict) and cfg.get("subset") and cfg.get("data") == data:
        return int(cfg["subset"]), seed
    return None, seed
