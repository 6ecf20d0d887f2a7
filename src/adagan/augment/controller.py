"""The adaptive augmentation controller (Karras et al. 2020, §3).

The overfitting heuristic r_t = E[sign(D(x_real))] is averaged over every real image the discriminator
scored since the last update (main D step and R1 step, all processes). Every `interval` iterations:

    p <- max(0, p + sign(r_t - target) * batch * interval / (ada_kimg * 1000))

so p can move from 0 to 1 in ada_kimg thousand real images. The statistics are all-reduced before use,
so every process computes the same p from the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from adagan.augment.diffaug import DiffAugmentPipe
from adagan.augment.pipeline import AugmentPipe
from adagan.config import AUGMENT_MODES as MODES
from adagan.config import AUGPIPES, DIFFAUG_AUGPIPES, AugmentConfig
from adagan.errors import ConfigError
from adagan.limits import check_choice


class AdaController:
    """Adjusts `augment_pipe.p` from the `Loss/signs/real` statistic.

    mode: 'ada' (adaptive, starting at p), 'fixed' (p stays as given) or 'noaug' (p = 0, never changes).
    batch: the total batch over all processes (images per iteration).
    Feed it with `accumulate(signs)` (e.g. `stats.subscribe("Loss/signs/real", ctl.accumulate)`) and call
    `step(all_reduce=...)` every `interval` iterations.
    """

    def __init__(self, augment_pipe, *, mode: str = "ada", target: float = 0.6, interval: int = 4,
                 ada_kimg: float = 500.0, batch: int = 32, p: float = 0.0):
        check_choice("augmentation mode", mode, MODES)
        if interval < 1 or ada_kimg <= 0 or batch < 1:
            raise ConfigError("ADA needs interval >= 1, ada_kimg > 0 and batch >= 1")
        if not 0 <= p:
            raise ConfigError(f"augmentation probability p={p} must be >= 0")
        self.pipe = augment_pipe
        self.mode, self.target, self.interval = mode, float(target), int(interval)
        self.ada_kimg, self.batch = float(ada_kimg), int(batch)
        self._acc = torch.zeros([2], dtype=torch.float64)  # (sum of signs, count) since the last update
        self.r_t: float | None = None  # the latest r_t (None before the first update)
        self._set_p(0.0 if mode == "noaug" else p)

    @property
    def p(self) -> float:
        return float(self._p)

    def _set_p(self, value: float) -> None:
        self._p = float(value)
        if self.pipe is not None:
            self.pipe.p.fill_(self._p)

    def accumulate(self, signs: torch.Tensor) -> None:
        """Add the signs of real-image logits (any shape)."""
        signs = signs.detach().flatten()
        self._acc += torch.stack([signs.sum().double().cpu(), torch.tensor(float(signs.numel()),
                                                                          dtype=torch.float64)])

    def step(self, batch_idx: int | None = None, *, all_reduce: Callable[[torch.Tensor], None] | None = None) -> None:
        """Update p from everything accumulated since the last call (r_t across all processes).

        all_reduce: sums a tensor in place over processes (None for a single process).
        """
        acc, self._acc = self._acc, torch.zeros_like(self._acc)
        if self.mode != "ada":
            return
        if all_reduce is not None:
            dev = self.pipe.p.device if self.pipe is not None else torch.device("cpu")
            t = acc.to(dev)
            all_reduce(t)
            acc = t.cpu()
        total, count = float(acc[0]), float(acc[1])
        if count == 0:
            return
        self.r_t = total / count
        sign = (self.r_t > self.target) - (self.r_t < self.target)
        adjust = sign * self.batch * self.interval / (self.ada_kimg * 1000)
        self._set_p(max(0.0, self._p + adjust))

    def state_dict(self) -> dict:
        """JSON-serialisable state; resume restores p exactly (including pending statistics)."""
        return {"mode": self.mode, "p": self._p, "r_t": self.r_t, "acc": [float(v) for v in self._acc]}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        if self.mode == "ada":
            self._set_p(float(state["p"]))
        self.r_t = state.get("r_t")
        if "acc" in state:
            self._acc = torch.tensor(state["acc"], dtype=torch.float64)


def build_pipe(augpipe: str) -> torch.nn.Module:
    """The augment pipe an --augpipe name (config.AUGPIPES) stands for, with p = 0: ADA's AugmentPipe, or
    a DiffAugmentPipe for DiffAugment's policies (config.DIFFAUG_AUGPIPES). Both take float NCHW images in
    [-1, 1] and have a scalar buffer `p`."""
    check_choice("--augpipe", augpipe, AUGPIPES)
    if augpipe in DIFFAUG_AUGPIPES:
        return DiffAugmentPipe(",".join(AUGPIPES[augpipe]), p=0.0)
    return AugmentPipe(augpipe=augpipe)


def build_augment(cfg: AugmentConfig, batch: int, device) -> tuple:
    """(pipe, controller) for an AugmentConfig on `device`, both None under 'noaug'. A new augmentation
    choice (another pipe, another way to set p) plugs in here (build_pipe) and in config.AUGMENT_MODES or
    config.AUGPIPES."""
    if cfg.mode == "noaug":
        return None, None
    pipe = build_pipe(cfg.augpipe).train().requires_grad_(False).to(device)
    controller = AdaController(pipe, mode=cfg.mode, target=cfg.target, interval=cfg.interval, ada_kimg=cfg.ada_kimg,
                               batch=batch, p=cfg.p)
    return pipe, controller
