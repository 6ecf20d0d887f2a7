"""Transfer learning (`adagan train --resume FILE`): a run's G, D and G_ema start from a network file.

The file's networks must have this run's shape, field by field (`shape_differences`); when they do not, the
error names the flags that build the same network. Only the networks are taken: the optimizers, ADA's p
and the counters start afresh (presets.for_training sets the transfer-learning policy); the run records the
network it started from and that network's training (state.Origin), which its snapshots carry.
"""

from __future__ import annotations

from pathlib import Path

from adagan.errors import AdaganError
from adagan.io import load_networks, network_config, read_metadata
from adagan.netfiles import trained_kimg
from adagan.networks.generator import block_resolutions, channels_at
from adagan.training.state import TrainState


def check_fit(path: Path, G_cfg, D_cfg, label: str | None = None) -> None:
    """AdaganError, naming the flags that would build the same network, when the networks of the file at
    `path` do not have the shapes of a run's G_cfg and D_cfg (read from the file's metadata only: the dry run
    checks this before anything is trained). label: the network as the user named it (default: path)."""
    info = read_metadata(path)
    present = info.get("networks", [])
    for name, cfg in (("G", G_cfg), ("D", D_cfg)):  # the file's networks must be this run's shape, field by field
        key = f"config.{name}"
        if key in info and any(n in present for n in ((name,) if name == "D" else ("G", "G_ema"))):
            theirs_cfg = network_config(name, info[key], path)
            differ = shape_differences(theirs_cfg, cfg)
            if differ:
                data_bound = [k for k, _, _ in differ if k in ("img_resolution", "img_channels", "c_dim")]
                keys = [k for k, _, _ in differ if k not in data_bound and k != "channels"]
                keys += ["channel_base", "channel_max"] if any(k == "channels" for k, _, _ in differ) else []
                flags = " ".join(f"--{name}.{k}={getattr(theirs_cfg, k)}" for k in keys)
                hint = (f"; pass {flags} to build the same network" if not data_bound else
                        "; use a network made for data of this resolution, channel count and labels")
                raise AdaganError(f"--resume {label or path}: its {name} does not fit this run: "
                                  + ", ".join(f"{k} {theirs} (this run: {mine})" for k, theirs, mine in differ) + hint)


def load_transfer_weights(path: Path, state: TrainState, log, label: str | None = None) -> None:
    """Initialise the state's G, D and G_ema from a network file (`--resume`) and record it as the run's origin
    (label: the network as the user named it, builtin:NAME, a pretrained name or a URL; default: the file's
    absolute path); AdaganError, naming the flags that would build the same network, when its networks do not
    fit this run."""
    G, D, G_ema = state.G, state.D, state.G_ema
    check_fit(path, G.cfg, D.cfg)
    info = read_metadata(path)
    present = info.get("networks", [])
    nets = load_networks(path, tuple(n for n in ("G", "D", "G_ema") if n in present))
    for name, target in (("G", G), ("D", D), ("G_ema", G_ema)):
        src = nets.get(name) or (nets.get("G_ema") if name == "G" else nets.get("G") if name == "G_ema" else None)
        if src is None:
            log(f"--resume: {path} has no {name}; it starts from scratch")
            continue
        mine, theirs = target.state_dict(), src.state_dict()
        bad = [k for k in mine if k not in theirs or theirs[k].shape != mine[k].shape]
        if bad or set(theirs) != set(mine):
            raise AdaganError(f"--resume {path}: its {name} does not fit this run ({len(bad)} tensors differ, e.g. "
                              f"{(bad or sorted(set(theirs) ^ set(mine)))[0]}); use a network of the same resolution, "
                              "channels, labels and preset")
        target.load_state_dict(theirs, strict=True)
    record_origin(path, state, label, info)
    log(f"Initialised G, D and G_ema from {path}")


def record_origin(path: Path, state: TrainState, label: str | None = None, info: dict | None = None) -> None:
    """Record the network file at `path` as the run's origin (state.Origin): label (default: the file's absolute
    path) and its training in all. info: its metadata, when already read."""
    info = read_metadata(path) if info is None else info
    state.origin.network, state.origin.kimg = label or str(Path(path).resolve()), trained_kimg(info)


# Config fields that decide which tensors a network has and their shapes (or how they are used), by network.
SHAPE_FIELDS = {"G": ("architecture", "img_resolution", "img_channels", "c_dim", "z_dim", "w_dim", "map_layers"),
                "D": ("architecture", "img_resolution", "img_channels", "c_dim", "mbstd_num_channels")}


def shape_differences(theirs, mine) -> list[tuple[str, object, object]]:
    """(field, their value, mine) for every shaping field in which two G (or two D) configs differ; the
    feature maps per resolution count as one field 'channels'."""
    name = "D" if hasattr(mine, "mbstd_group_size") else "G"
    fields = SHAPE_FIELDS[name] + (("cmap_dim", "map_layers") if name == "D" and mine.c_dim else ())
    out = [(k, getattr(theirs, k), getattr(mine, k)) for k in fields if getattr(theirs, k) != getattr(mine, k)]
    res = block_resolutions(min(mine.img_resolution, theirs.img_resolution))
    ch_t = [channels_at(r, theirs.channel_base, theirs.channel_max) for r in res]
    ch_m = [channels_at(r, mine.channel_base, mine.channel_max) for r in res]
    if ch_t != ch_m:
        out.append(("channels", ch_t, ch_m))
    return out
