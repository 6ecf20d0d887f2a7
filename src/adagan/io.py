"""Save and load networks as safetensors + JSON config: no code is ever executed on load (netfiles.py).

File layout: tensors named `<net>.<param>` (`G.mapping.fc0.weight`, `D.b32.conv0.weight`,
`G_ema.synthesis.b4.const`, plus optional `state.<name>` extras); the safetensors metadata
holds `format=adagan`, `format_version`, one JSON config per network (`config.G`, `config.D`;
G_ema shares G's) and optionally the whole training config and other JSON fields.
Loading builds each network from its config and loads its tensors strictly. Every loader takes what
`adagan.pretrained.resolve_network` takes: a file, `builtin:NAME`, a pretrained name or an http(s) URL.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from adagan import netfiles
from adagan.files import atomic_write  # noqa: F401 (re-export: where writers used to find it)
from adagan.netfiles import (  # noqa: F401 (the file format, handed on)
    FORMAT,
    FORMAT_VERSION,
    NETWORK_NAMES,
    network_config,
    save_networks,
)
from adagan.pretrained import resolve_network


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The file's JSON metadata: `networks`, `config.G`/`config.D`, `train_config`, and `meta.*` fields."""
    return netfiles.read_metadata(resolve_network(path))


def load_networks(path: str | os.PathLike, which: tuple[str, ...] | None = None, device="cpu") -> dict:
    """netfiles.load_networks of a network argument (a file, builtin:NAME, a pretrained name, a URL)."""
    return netfiles.load_networks(resolve_network(path), which, device)


def load_network(path: str | os.PathLike, which: str = "G_ema", device: str | torch.device = "cpu"):
    """One network (G_ema by default) of a network argument, in eval mode on `device`."""
    return netfiles.load_network(resolve_network(path), which, device)


def load_extra_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    return netfiles.load_extra_tensors(resolve_network(path))
