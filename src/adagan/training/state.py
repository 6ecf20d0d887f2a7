"""The training state: everything an exact resume restores, in one object that is saved whole.

As edm2's training loop keeps a `state` and hands it to one checkpoint helper, `TrainState` holds
the progress counters and refers to the objects that own the rest (networks, optimizers, the loss's
path-length mean, the ADA controller, the data sampler). `TrainState.parts()` is the one list of what
a resume restores; `flat_state_dict` lays every part out as a state file holds it (tensors under
`<part>.<key>`, the rest JSON), so `checkpoint.save` / `checkpoint.load` carry every part without knowing it.
Randomness derives from (seed, rank, batch_idx), so no RNG state is part of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Progress:
    """Where training is: images shown (all processes), ticks ended, iterations done."""

    cur_nimg: int = 0
    cur_tick: int = 0
    batch_idx: int = 0

    def state_dict(self) -> dict:
        return {"cur_nimg": self.cur_nimg, "cur_tick": self.cur_tick, "batch_idx": self.batch_idx}

    def load_state_dict(self, state: dict) -> None:
        self.cur_nimg, self.cur_tick, self.batch_idx = state["cur_nimg"], state["cur_tick"], state["batch_idx"]


class OptimizerState:
    """An optimizer's moments as flat tensors `<param index>.<field>` plus its JSON `param_groups`.

    Loading keeps the optimizer's current hyperparameters (lr, betas, eps come from the config, so a
    resumed run that changes --optim.lr_g really uses the new rate); only the moments are restored.
    """

    def __init__(self, opt: torch.optim.Optimizer):
        self.opt = opt

    def state_dict(self) -> dict:
        sd = self.opt.state_dict()
        out: dict = {f"{idx}.{key}": torch.as_tensor(value) for idx, per_param in sd["state"].items()
                     for key, value in per_param.items()}
        out["param_groups"] = sd["param_groups"]
        return out

    def load_state_dict(self, state: dict) -> None:
        moments: dict[int, dict] = {}
        for key, value in state.items():
            if key != "param_groups":
                idx, field = key.split(".", 1)
                moments.setdefault(int(idx), {})[field] = value
        current = self.opt.state_dict()["param_groups"]
        if [len(g["params"]) for g in current] != [len(g["params"]) for g in state["param_groups"]]:
            raise ValueError("the optimizer has a different parameter layout")
        self.opt.load_state_dict({"state": moments, "param_groups": current})
        device = self.opt.param_groups[0]["params"][0].device
        for per_param in self.opt.state.values():
            for k, v in per_param.items():
                if isinstance(v, torch.Tensor) and k != "step":
                    per_param[k] = v.to(device)


@dataclass
class Origin:
    """The network a run started from (`--resume`: transfer learning, or a pretraining continued) and how
    long that network had trained in all (netfiles.trained_kimg: its own kimg plus its origin's, so a chain
    of fine-tunings adds up); None when the run started from noise, or when the file does not say (an
    imported official pickle). Snapshots record it as `meta.resumed_from`."""

    network: str | None = None  # builtin:NAME, a pretrained name, a URL or a file's absolute path
    kimg: float | None = None

    def state_dict(self) -> dict:
        return {} if self.network is None else {"network": self.network, "kimg": self.kimg}

    def load_state_dict(self, state: dict) -> None:
        self.network, self.kimg = state.get("network"), state.get("kimg")


class _Nothing:
    """The part that a missing object (no ADA controller under --aug noaug) leaves: saves {}."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class TrainState:
    """Progress counters plus the objects a resume restores, referenced (not copied).

    Each part has state_dict() -> {name: tensor or JSON value} and load_state_dict(); checkpoint stores
    tensors in the safetensors file and the rest as JSON metadata, under the part's name.
    """

    def __init__(self, *, G, D, G_ema, opt_G, opt_D, loss, sampler, controller=None):
        self.progress = Progress()
        self.origin = Origin()
        self.G, self.D, self.G_ema = G, D, G_ema
        self.opt_G, self.opt_D = opt_G, opt_D
        self.loss, self.sampler, self.controller = loss, sampler, controller

    @property
    def networks(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def parts(self) -> dict:
        """Every piece of resume state besides the networks, by its name in the state file: the one place
        to add a new one. A part must accept {} from files saved before it existed."""
        return {
            "progress": self.progress,
            "augment": self.controller or _Nothing(),  # ADA p and the r_t statistics pending
            "sampler": self.sampler,  # data stream position
            "loss": self.loss,  # path-length running mean, LeCam's averages
            "opt_G": OptimizerState(self.opt_G),
            "opt_D": OptimizerState(self.opt_D),
            "origin": self.origin,  # the network the run started from (`--resume`)
        }

    def state_dict(self) -> dict:
        return {name: part.state_dict() for name, part in self.parts().items()}

    def load_state_dict(self, state: dict) -> None:
        for name, part in self.parts().items():
            part.load_state_dict(state.get(name, {}))

    def flat_state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The state as a state file holds it: (tensors under `<part>.<key>`, the JSON rest by name)."""
        tensors: dict[str, torch.Tensor] = {}
        meta: dict = {}
        for name, value in self.state_dict().items():
            _flatten(name, value, tensors, meta)
        return tensors, meta

    def load_flat_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.load_state_dict({name: _unflatten(name, tensors, meta) for name in self.parts()})


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
