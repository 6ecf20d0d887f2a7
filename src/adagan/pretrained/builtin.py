"""The built-in networks' files: a training snapshot's G, D and G_ema stored in float16.

`--resume` initialises G, D and G_ema from a network file (training/loop.py `_load_transfer_weights`), so a
built-in network keeps all three, as the official transfer-learning pickles do. Storing them in float16
halves the package's size; loading (adagan.io) builds float32 networks and copies the values in, so a
built-in network trains and renders in float32 like any other.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from adagan.errors import CheckpointError
from adagan.netfiles import load_networks, read_metadata, save_networks, started_from

FP16_MAX = float(torch.finfo(torch.float16).max)


def _half(net: torch.nn.Module, name: str, source) -> torch.nn.Module:
    for key, t in net.state_dict().items():
        if t.is_floating_point() and t.numel() and float(t.abs().max()) > FP16_MAX:
            raise CheckpointError(f"{source}: {name}.{key} holds values beyond float16's range "
                                  f"({float(t.abs().max()):.3g}); it cannot be stored in float16")
    return net.half()


def export_builtin(snapshot_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write the G, D and G_ema of a training snapshot (`network-snapshot-*.safetensors`) as a float16
    network file for `builtin:NAME` (src/adagan/pretrained/NAME.safetensors). Returns out_path."""
    from adagan.config import TrainConfig, from_dict

    info = read_metadata(snapshot_path)
    missing = [n for n in ("G", "D", "G_ema") if n not in info.get("networks", [])]
    if missing:
        raise CheckpointError(f"{snapshot_path} has no {', '.join(missing)}; pass a training snapshot "
                              "(network-snapshot-*.safetensors), which holds G, D and G_ema")
    nets = load_networks(snapshot_path)
    halves = {name: _half(net, name, snapshot_path) for name, net in nets.items()}
    config = None
    if isinstance(info.get("train_config"), dict):
        try:
            config = from_dict(TrainConfig, info["train_config"])
        except (ValueError, TypeError):  # a config of another adagan version: the networks still load
            config = None
    meta = {k[len("meta."):]: v for k, v in info.items() if k.startswith("meta.")}
    # made_from: the training snapshot's name (kept when re-exporting a file this function wrote).
    meta.update(dtype="float16", made_from=meta.get("made_from") or Path(snapshot_path).name)
    origin = started_from(info)
    if origin is not None and Path(origin).is_absolute():
        # A run resumed from a file records its absolute path (training/state.Origin); a shipped file keeps
        # only the name: the folder is one machine's, and `adagan info` shows it to every user.
        meta["resumed_from"] = {**meta["resumed_from"], "network": Path(origin).name}
    save_networks(out_path, G=halves["G"], D=halves["D"], G_ema=halves["G_ema"], config=config, metadata=meta)
    return Path(out_path)
