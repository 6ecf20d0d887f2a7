"""Save and load networks as safetensors + JSON config: no code is ever executed on load.

File layout: tensors named `<net>.<param>` (`G.mapping.fc0.weight`, `D.b32.conv0.weight`,
`G_ema.synthesis.b4.const`, plus optional `state.<name>` extras); the safetensors metadata
holds `format=adagan`, `format_version`, one JSON config per network (`config.G`, `config.D`;
G_ema shares G's) and optionally the whole training config and other JSON fields.
Loading builds each network from its config and loads its tensors strictly. This module reads local files
only; adagan.io is the same with every network argument resolved first (a pretrained name, a URL).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from adagan.config import DiscriminatorConfig, GeneratorConfig, TrainConfig, from_dict, to_dict
from adagan.errors import CheckpointError, ConfigError
from adagan.files import atomic_write
from adagan.limits import check_network

FORMAT = "adagan"
FORMAT_VERSION = "1"
NETWORK_NAMES = ("G", "D", "G_ema")


def _net_config(net) -> GeneratorConfig | DiscriminatorConfig:
    cfg = getattr(net, "cfg", None)
    if not isinstance(cfg, GeneratorConfig | DiscriminatorConfig):
        raise TypeError(f"{type(net).__name__} has no adagan config (.cfg); only adagan networks can be saved")
    return cfg


def save_networks(path: str | os.PathLike, *, G=None, D=None, G_ema=None, config: TrainConfig | None = None,
                  extra_tensors: dict[str, torch.Tensor] | None = None,
                  metadata: dict[str, Any] | None = None) -> None:
    """Write the given networks (any of G, D, G_ema) and extras to one safetensors file, atomically.

    `metadata` values are stored as JSON and come back from `read_metadata`.
    """
    nets = {"G": G, "D": D, "G_ema": G_ema}
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, str] = {"format": FORMAT, "format_version": FORMAT_VERSION}
    for name, net in nets.items():
        if net is None:
            continue
        cfg = _net_config(net)
        meta[f"config.{'D' if name == 'D' else 'G'}"] = json.dumps(to_dict(cfg), sort_keys=True)
        for key, value in net.state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().to("cpu").contiguous()
    if G is not None and G_ema is not None and _net_config(G) != _net_config(G_ema):
        raise ValueError("G and G_ema must share one config")
    for key, value in (extra_tensors or {}).items():
        tensors[f"state.{key}"] = torch.as_tensor(value).detach().to("cpu").contiguous()
    if config is not None:
        meta["train_config"] = json.dumps(to_dict(config), sort_keys=True)
    meta["networks"] = json.dumps([n for n, v in nets.items() if v is not None])
    for key, value in (metadata or {}).items():
        meta[f"meta.{key}"] = json.dumps(value)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def _open(path: str | os.PathLike):
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"network file not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; pass a .safetensors network file "
                              "(e.g. network-snapshot-*.safetensors)")
    if not path.is_file():  # a pipe or a device would block or never end
        raise CheckpointError(f"{path} is not a regular file; pass a .safetensors network file")
    try:
        f = safe_open(str(path), framework="pt", device="cpu")
        meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        hint = (" It looks like a pickle: convert official NVIDIA networks with `adagan import-official`."
                if path.suffix == ".pkl" else "")
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or another format: {e}).{hint}") \
            from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not an adagan network (no 'format: adagan' metadata)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {meta.get('format_version')!r}; this adagan reads "
                              f"version {FORMAT_VERSION}: upgrade adagan")
    return f, meta


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The file's JSON metadata: `networks`, `config.G`/`config.D`, `train_config`, and `meta.*` fields."""
    _, meta = _open(path)
    out: dict[str, Any] = {}
    for key, value in meta.items():
        try:
            out[key] = json.loads(value) if key not in ("format", "format_version") else value
        except (json.JSONDecodeError, RecursionError):
            raise CheckpointError(f"{path}: corrupt metadata field {key!r}") from None
    nets = out.get("networks", [])
    if not isinstance(nets, list) or not all(n in NETWORK_NAMES for n in nets):
        raise CheckpointError(f"{path}: corrupt metadata field 'networks' ({str(nets)[:60]}); expected a list of "
                              f"{', '.join(NETWORK_NAMES)}")
    for key in ("config.G", "config.D", "train_config"):
        if key in out and not isinstance(out[key], dict):
            raise CheckpointError(f"{path}: corrupt metadata field {key!r} (not a JSON object)")
    return out


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def started_from(meta: dict[str, Any]) -> str | None:
    """The network a file's run started from (`meta.resumed_from`, training/state.Origin), as the user named it;
    None when it started from noise or the file does not say."""
    origin = meta.get("meta.resumed_from")
    network = origin.get("network") if isinstance(origin, dict) else None
    return network if isinstance(network, str) else None


def trained_kimg(meta: dict[str, Any]) -> float | None:
    """How long a file's networks trained in all, from its metadata (read_metadata): its run's kimg plus, when
    that run started from another network (`meta.resumed_from`, training/state.Origin), what that one had
    trained in all. None when the file does not say (no kimg, or an origin of unknown training such as an
    imported official pickle)."""
    kimg = _number(meta.get("meta.kimg"))
    origin = meta.get("meta.resumed_from")
    if kimg is None or not isinstance(origin, dict):
        return kimg
    before = _number(origin.get("kimg"))
    return None if before is None else kimg + before


def network_config(name: str, cfg_dict: dict, path) -> GeneratorConfig | DiscriminatorConfig:
    """The checked config of network `name` (G, G_ema or D) as stored in a file (limits.check_network)."""
    try:
        cfg = from_dict(DiscriminatorConfig if name == "D" else GeneratorConfig, cfg_dict)
        check_network(cfg)
        return cfg
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{path}: its {name} config cannot be used by this adagan ({e})") from None


def _build(name: str, cfg: GeneratorConfig | DiscriminatorConfig, device="cpu") -> torch.nn.Module:
    from adagan.networks import Discriminator, Generator

    with torch.device(device):
        return Discriminator(cfg) if name == "D" else Generator(cfg)


def load_networks(path: str | os.PathLike, which: tuple[str, ...] | None = None,
                  device: str | torch.device = "cpu") -> dict[str, torch.nn.Module]:
    """Build and strictly load networks from a file written by `save_networks`.

    which: names to load (default: all present). Returns {name: module in eval mode}.
    """
    f, meta = _open(path)
    info = read_metadata(path)
    present = info.get("networks", [])
    which = tuple(present) if which is None else tuple(which)
    for name in which:
        if name not in NETWORK_NAMES:
            raise ValueError(f"unknown network {name!r}; choose from {NETWORK_NAMES}")
        if name not in present:
            raise CheckpointError(f"{path} holds {', '.join(present) or 'no networks'}, not {name}")
    keys = set(f.keys())
    configs = {n: network_config(n, info[f"config.{n}"], path) for n in ("G", "D") if f"config.{n}" in info}
    nets = {}
    for name in which:
        cfg_key = f"config.{'D' if name == 'D' else 'G'}"
        if cfg_key not in info:
            raise CheckpointError(f"{path} lacks the {cfg_key} metadata needed to build {name}")
        cfg = configs["D" if name == "D" else "G"]
        # The shapes the config implies, from a network on the meta device (nothing allocated), must be the
        # stored ones before the real network is built: its size is then bounded by the file's.
        expected = {k: tuple(v.shape) for k, v in _build(name, cfg, "meta").state_dict().items()}
        prefix = f"{name}."
        stored = {k[len(prefix):] for k in keys if k.startswith(prefix)}
        missing = sorted(set(expected) - stored)
        unexpected = sorted(stored - set(expected))
        if missing or unexpected:
            raise CheckpointError(
                f"{path}: {name} tensors do not match its config (missing: {missing[:3]}, "
                f"unexpected: {unexpected[:3]}); the file is damaged or was edited")
        for k, shape in expected.items():
            t_shape = tuple(f.get_slice(prefix + k).get_shape())
            if t_shape != shape:
                raise CheckpointError(f"{path}: {name}.{k} has shape {list(t_shape)}, expected {list(shape)}")
        net = _build(name, cfg)
        state = {}
        for k in expected:
            t = f.get_tensor(prefix + k)
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise CheckpointError(f"{path}: {name}.{k} holds NaN or infinite values (training had diverged "
                                      "when it was saved, or the file was edited); use an earlier snapshot")
            state[k] = t
        net.load_state_dict(state, strict=True)
        nets[name] = net.eval().requires_grad_(False).to(device)
    return nets


def load_network(path: str | os.PathLike, which: str = "G_ema", device: str | torch.device = "cpu"):
    """One network; asking for G_ema falls back to G when the file has no G_ema."""
    present = read_metadata(path).get("networks", [])
    if which == "G_ema" and "G_ema" not in present and "G" in present:
        which = "G"
    return load_networks(path, (which,), device=device)[which]


def load_extra_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The `state.*` tensors saved with `extra_tensors`."""
    f, _ = _open(path)
    return {k[len("state."):]: f.get_tensor(k) for k in f.keys() if k.startswith("state.")}
