"""Files of a run: training states for exact resume and network snapshots, both safetensors + JSON.

A state file (`training-state-NNNNNNNNN.safetensors`, numbered by cur_nimg) holds G, D, G_ema and
every part of the TrainState (training/state.py), saved whole: a part's tensors go into the file
under `<part>.<key>` (`opt_G.3.exp_avg`, `loss.pl_mean`), everything else into its JSON metadata
(`progress`, `augment`, `sampler`, `opt_G.param_groups`). Writes are atomic; old states are pruned.
A snapshot (`network-snapshot-NNNNNN.safetensors`, numbered by kimg) holds the networks and augment p.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from adagan.config import TrainConfig
from adagan.errors import CheckpointError
from adagan.io import load_extra_tensors, load_networks, read_metadata, save_networks
from adagan.training.state import TrainState

STATE_RE = re.compile(r"^training-state-(\d+)\.safetensors$")
KEEP_STATES = 3


def state_path(run_dir: Path, cur_nimg: int) -> Path:
    return Path(run_dir) / f"training-state-{cur_nimg:09d}.safetensors"


def snapshot_path(run_dir: Path, cur_nimg: int) -> Path:
    return Path(run_dir) / f"network-snapshot-{cur_nimg // 1000:06d}.safetensors"


def list_states(run_dir: Path) -> list[Path]:
    """State files, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := STATE_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def save_snapshot(run_dir: Path, state: TrainState, config: TrainConfig) -> Path:
    """network-snapshot for the current kimg: G, D, G_ema, augment p and the config."""
    cur_nimg = state.progress.cur_nimg
    path = snapshot_path(run_dir, cur_nimg)
    p = state.controller.p if state.controller is not None else 0.0
    save_networks(path, **state.networks, config=config, extra_tensors={"augment_p": torch.tensor(p)},
                  metadata={"kimg": cur_nimg / 1000, "cur_nimg": cur_nimg})
    return path


def save(run_dir: Path, state: TrainState, config: TrainConfig, keep: int = KEEP_STATES) -> Path:
    """Write the whole training state; keep the newest `keep` state files."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict = {}
    for name, value in state.state_dict().items():
        _flatten(name, value, tensors, meta)
    path = state_path(run_dir, state.progress.cur_nimg)
    save_networks(path, **state.networks, config=config, extra_tensors=tensors, metadata=meta)
    for old in list_states(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load(path: Path, state: TrainState) -> None:
    """Restore `state` (networks included) from a state file written by `save`."""
    try:
        nets = load_networks(path, tuple(state.networks))
        meta = {k[len("meta."):]: v for k, v in read_metadata(path).items() if k.startswith("meta.")}
        tensors = load_extra_tensors(path)
        _upgrade(tensors, meta)
        for name, net in state.networks.items():
            net.load_state_dict(nets[name].state_dict(), strict=True)
        state.load_state_dict({name: _unflatten(name, tensors, meta) for name in state.parts()})
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a usable training state ({e}); delete it to fall back to an "
                              "older one, or pass --new to start over") from None


def _flatten(name: str, value, tensors: dict, meta: dict) -> None:
    """A tensor, or a dict holding tensors, goes to `tensors` (dotted names); anything else is JSON."""
    if isinstance(value, torch.Tensor):
        tensors[name] = value
    elif isinstance(value, dict) and any(isinstance(v, torch.Tensor) for v in value.values()):
        for key, v in value.items():
            _flatten(f"{name}.{key}", v, tensors, meta)
    else:
        meta[name] = value


def _unflatten(name: str, tensors: dict, meta: dict):
    if name in tensors:
        return tensors[name]
    if name in meta:
        return meta[name]
    prefix = f"{name}."
    return {k[len(prefix):]: v for src in (tensors, meta) for k, v in src.items() if k.startswith(prefix)}


def _upgrade(tensors: dict, meta: dict) -> None:
    """States written before TrainState named two parts differently; read them as today's."""
    if "pl_mean" in tensors:
        tensors["loss.pl_mean"] = tensors.pop("pl_mean")
    if "sampler_position" in meta:
        meta["sampler"] = {"position": meta.pop("sampler_position")}
