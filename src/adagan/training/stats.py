"""Statistics reported by name (`Loss/G/loss`, `Loss/signs/real`, ...) and read elsewhere.

Code anywhere in training calls `stats.report(name, values)`; the loop drains the
collector once per tick (means over everything reported since), and consumers
such as the ADA controller subscribe to a name instead of having values threaded
through return values. Under torch.distributed, `Collector.reduce` sums the
(count, sum, sum of squares) over ranks so every rank sees the same numbers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

import torch

_subscribers: dict[str, list[Callable[[torch.Tensor], None]]] = defaultdict(list)
_collectors: list[Collector] = []


def report(name: str, value) -> None:
    """Record a scalar or a tensor of values (each element counts once)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().flatten().to(torch.float64)
    else:
        value = torch.as_tensor(value, dtype=torch.float64).flatten()
    for fn in _subscribers.get(name, ()):
        fn(value)
    if not _collectors:
        return
    moments = torch.stack([torch.tensor(float(value.numel()), dtype=torch.float64),
                           value.sum().cpu(), value.square().sum().cpu()]) if value.numel() else None
    if moments is None:
        return
    for c in _collectors:
        c._add(name, moments)


def subscribe(name: str, fn: Callable[[torch.Tensor], None]) -> Callable[[], None]:
    """Call fn(values) on every report of `name`; returns an unsubscribe function."""
    _subscribers[name].append(fn)
    return lambda: _subscribers[name].remove(fn)


class Collector:
    """Accumulates moments of every reported statistic between `drain()` calls."""

    def __init__(self):
        self._moments: dict[str, torch.Tensor] = {}
        _collectors.append(self)

    def close(self) -> None:
        if self in _collectors:
            _collectors.remove(self)

    def _add(self, name: str, moments: torch.Tensor) -> None:
        if name in self._moments:
            self._moments[name] = self._moments[name] + moments
        else:
            self._moments[name] = moments.clone()

    def reduce(self, all_reduce: Callable[[torch.Tensor], None] | None, names: list[str]) -> None:
        """Sum moments of `names` across processes (the same list on every rank).

        Statistics not in `names` (timings, memory) keep this process's own values.
        """
        if all_reduce is None:
            return
        stacked = torch.stack([self._moments.pop(n, torch.zeros(3, dtype=torch.float64)) for n in names])
        all_reduce(stacked)
        self._moments.update({n: stacked[i] for i, n in enumerate(names) if stacked[i, 0] > 0})

    def drain(self) -> dict[str, dict[str, float]]:
        """{name: {num, mean, std}} since the last drain; resets the collector."""
        out = {}
        for name, (n, s, sq) in sorted(self._moments.items()):
            n, s, sq = n.item(), s.item(), sq.item()
            mean = s / n
            var = max(sq / n - mean * mean, 0.0) if math.isfinite(sq) else float("nan")
            out[name] = {"num": n, "mean": mean, "std": math.sqrt(var) if math.isfinite(var) else float("nan")}
        self._moments = {}
        return out
