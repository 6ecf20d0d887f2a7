"""CPU threads that adapt to what else runs on the machine.

PyTorch's OpenMP threads busy-wait at every barrier. With one thread per core and another CPU-bound
process beside it, each step waits for the thread that lost its core: on a 2-core machine training
ran 3-10x slower beside a second process (docs/benchmarks.md), whereas with one thread fewer it
loses only that thread's share. So by default adagan uses the cores that *other* processes leave
free, measured from /proc/stat (all CPU time) minus this process's own CPU time, and re-checks while
it runs: `ThreadGovernor.maybe_update()` is cheap enough to call every iteration (it looks at the
clock and acts at most every `interval` seconds).

A changed count changes how float sums are split, so a training run is bitwise reproducible (and its
resume bitwise the uninterrupted run) only at a fixed count (docs/training.md, "Exact resume").
An explicit count (`--threads N`, or `OMP_NUM_THREADS` in the environment) is used as given. Where
/proc/stat is missing (macOS, Windows) the automatic choice is all available cores, as PyTorch's own.
This module imports nothing else from adagan, so every layer may use it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

try:  # Unix only; on Windows this process's CPU time comes from time.process_time()
    import resource
except ImportError:
    resource = None

# Others' use (in cores, averaged since the last check) that makes us give up a thread, and the
# use below which we take one back: the gap keeps the count from flapping on bursty neighbours.
GIVE_UP = 0.5
TAKE_BACK = 0.25
INTERVAL_S = 5.0  # shortest time between two checks
FIRST_SAMPLE_S = 0.3  # how long the first look at the machine takes


def cpu_count() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def _busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot (user+nice+system+irq+softirq+steal), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 8:
        return None
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds this process has used (all its threads)."""
    if resource is None:
        return time.process_time()
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class CpuLoad:
    """Cores used by other processes, averaged between two `sample()` calls (None where unknown)."""

    def __init__(self):
        self._last = self._read()

    @staticmethod
    def _read():
        busy = _busy_seconds()
        return None if busy is None else (time.monotonic(), busy, _own_seconds())

    def sample(self) -> float | None:
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[0] - last[0] <= 0:
            return None
        wall = now[0] - last[0]
        others = (now[1] - last[1]) - (now[2] - last[2])
        return max(others / wall, 0.0)


def explicit_threads(threads: int | None) -> int | None:
    """The thread count the user asked for: `threads`, else a valid $OMP_NUM_THREADS, else None (auto)."""
    if threads is not None:
        return threads
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(env) if env.isdigit() and int(env) > 0 else None


class ThreadGovernor:
    """Sets torch's intra-op thread count: fixed when asked for, else the cores others leave free.

    `limit` caps the automatic count (e.g. cores / processes for several training ranks on one CPU).
    `set_threads` and `load` are for tests (default: torch.set_num_threads and a real CpuLoad).
    """

    def __init__(self, threads: int | None = None, *, limit: int | None = None, interval: float | None = None,
                 set_threads: Callable[[int], None] | None = None, load: CpuLoad | None = None,
                 log: Callable[[str], None] | None = None):
        self.fixed = explicit_threads(threads)
        self.cores = cpu_count()
        self.limit = max(1, min(limit or self.cores, self.cores))
        self.interval = INTERVAL_S if interval is None else interval
        self._set = set_threads or _torch_set_num_threads
        self._log = log
        self._load = None if self.fixed is not None else (load or CpuLoad())
        self._next = 0.0
        self.threads = 0

    @property
    def automatic(self) -> bool:
        return self.fixed is None

    def start(self) -> int:
        """Choose and set the first count (sampling the machine for FIRST_SAMPLE_S when automatic)."""
        if not self.automatic:
            return self._apply(self.fixed)
        time.sleep(FIRST_SAMPLE_S)
        others = self._load.sample()
        n = self.limit if others is None else self._fit(others, self.limit)
        self._next = time.monotonic() + self.interval
        return self._apply(n)

    def maybe_update(self) -> int:
        """Re-check the machine if `interval` has passed; returns the (possibly new) count."""
        if not self.automatic or time.monotonic() < self._next:
            return self.threads
        self._next = time.monotonic() + self.interval
        others = self._load.sample()
        if others is None:
            return self.threads
        free = self.cores - others
        n = self.threads
        if free < n - GIVE_UP + 1e-9 and n > 1:  # someone else needs more than half a core of ours
            n = self._fit(others, n)
        elif free >= n + 1 - TAKE_BACK and n < self.limit:  # a whole core (almost) sits idle
            n = self._fit(others, self.limit)
        return self._apply(n) if n != self.threads else n

    def _fit(self, others: float, cap: int) -> int:
        return int(max(1, min(cap, round(self.cores - others))))

    def _apply(self, n: int) -> int:
        if n != self.threads:
            if self._log is not None and self.threads:
                self._log(f"threads: {self.threads} -> {n} (other processes use the rest of the "
                          f"{self.cores} cores)")
            self._set(n)
            self.threads = n
        return n


def _torch_set_num_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
