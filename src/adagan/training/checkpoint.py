"""Training state for exact resume: one safetensors file per save, plain JSON beside the tensors.

A state file (`training-state-NNNNNNNNN.safetensors`, numbered by cur_nimg) holds G, D,
G_ema, both Adam states, the path-length mean, and in its metadata the progress counters,
the ADA controller state and the data sampler position. Randomness derives from
(seed, rank, batch_idx), so no RNG state is needed: a resumed run repeats exactly what
the uninterrupted run would have done. Writes are atomic; old states are pruned.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from adagan.config import TrainConfig
from adagan.errors import CheckpointError
from adagan.io import load_extra_tensors, load_networks, read_metadata, save_networks

STATE_RE = re.compile(r"^training-state-(\d+)\.safetensors$")


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


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer) -> tuple[dict, list]:
    sd = opt.state_dict()
    tensors = {}
    for idx, per_param in sd["state"].items():
        for key, value in per_param.items():
            tensors[f"opt_{name}.{idx}.{key}"] = torch.as_tensor(value)
    return tensors, sd["param_groups"]


def _restore_optimizer(name: str, opt: torch.optim.Optimizer, tensors: dict, param_groups: list) -> None:
    state: dict[int, dict] = {}
    prefix = f"opt_{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, field = key[len(prefix):].split(".", 1)
            state.setdefault(int(idx), {})[field] = value
    # Hyperparameters (lr, betas, eps) come from the current config, so a resumed run that changes
    # --optim.lr_g really uses the new rate; only the moment estimates come from the checkpoint.
    current = opt.state_dict()["param_groups"]
    if [len(g["params"]) for g in current] != [len(g["params"]) for g in param_groups]:
        raise ValueError(f"optimizer {name} has a different parameter layout")
    opt.load_state_dict({"state": state, "param_groups": current})


def save_training_state(path: Path, *, G, D, G_ema, opt_G, opt_D, pl_mean: torch.Tensor, config: TrainConfig,
                        progress: dict, augment: dict, sampler_position: int, keep: int = 3) -> None:
    extra = {"pl_mean": pl_mean.detach().to("cpu").reshape([])}
    meta = {"progress": progress, "augment": augment, "sampler_position": int(sampler_position)}
    for name, opt in (("G", opt_G), ("D", opt_D)):
        tensors, groups = _flatten_optimizer(name, opt)
        extra.update(tensors)
        meta[f"opt_{name}.param_groups"] = groups
    save_networks(path, G=G, D=D, G_ema=G_ema, config=config, extra_tensors=extra, metadata=meta)
    for old in list_states(Path(path).parent)[:-keep]:
        old.unlink(missing_ok=True)


def load_training_state(path: Path, *, G, D, G_ema, opt_G, opt_D, device) -> dict:
    """Load weights and optimizer states into the given objects; returns the JSON fields + pl_mean."""
    try:
        nets = load_networks(path, ("G", "D", "G_ema"))
        info = read_metadata(path)
        extra = load_extra_tensors(path)
        for net, name in ((G, "G"), (D, "D"), (G_ema, "G_ema")):
            net.load_state_dict(nets[name].state_dict(), strict=True)
        _restore_optimizer("G", opt_G, extra, json.loads(json.dumps(info["meta.opt_G.param_groups"])))
        _restore_optimizer("D", opt_D, extra, json.loads(json.dumps(info["meta.opt_D.param_groups"])))
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a usable training state ({e}); delete it to fall back to an "
                              "older one, or pass --new to start over") from None
    for state in list(opt_G.state.values()) + list(opt_D.state.values()):
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and k != "step":
                state[k] = v.to(device)
    return {
        "progress": info["meta.progress"],
        "augment": info["meta.augment"],
        "sampler_position": info["meta.sampler_position"],
        "pl_mean": extra["pl_mean"].to(device),
        "train_config": info.get("train_config"),
    }
