"""When things happen in a training run: ticks, snapshots, the stop, and the divergence check.

Ticks end where cur_nimg crosses a multiple of tick_kimg (so a resumed run keeps the schedule); a snapshot is
due every snap_ticks ticks and when the run stops. The run stops at --kimg, at --max-minutes or on a signal
(`StopFlag`: SIGINT/SIGTERM finish the iteration and save); non-finite losses for DIVERGENCE_TICKS ticks in
a row end it with TrainingDiverged (docs/training.md).
"""

from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from adagan.config import TrainConfig
from adagan.errors import TrainingDiverged

DIVERGENCE_TICKS = 3  # non-finite losses this many ticks in a row stop the run


class TickClock:
    """Wall-clock time of the run and of the current tick."""

    def __init__(self, cur_nimg: int):
        self.t_start = self.tick_start = time.time()
        self.tick_start_nimg = cur_nimg

    def minutes(self) -> float:
        return (time.time() - self.t_start) / 60

    def tick(self, cur_nimg: int) -> tuple[float, float, float]:
        """(now, seconds of this tick, seconds per kimg in it)."""
        now = time.time()
        tick_time = now - self.tick_start
        return now, tick_time, tick_time / max((cur_nimg - self.tick_start_nimg) / 1000, 1e-8)

    def restart(self, cur_nimg: int) -> None:
        self.tick_start, self.tick_start_nimg = time.time(), cur_nimg

    def restart_run(self) -> None:
        """Start the run's (and the first tick's) time now."""
        self.t_start = self.tick_start = time.time()


class StopFlag:
    """SIGINT/SIGTERM set a flag; the loop saves and exits at the end of the iteration."""

    def __init__(self):
        self.stop = False
        self.signal_name = ""
        self._old = {}

    def install(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, frame):
        if self.stop and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: give up immediately
        self.stop = True
        self.signal_name = signal.Signals(signum).name
        print(f"\n{self.signal_name}: finishing this iteration and saving the state "
              "(Ctrl-C again to quit without saving)...", file=sys.stderr, flush=True)

    def restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


class Schedule:
    """The run's timetable from `cur_nimg` on: `check_stop` after every iteration, `tick_due`, then
    `after_tick` at each tick's end (a TickPlan: the ETA, a scheduled snapshot, divergence)."""

    def __init__(self, config: TrainConfig, cur_nimg: int):
        self.kimg, self.max_minutes, self.snap_ticks = config.kimg, config.max_minutes, config.snap_ticks
        self.total_nimg, self.tick_nimg = int(config.kimg * 1000), int(config.tick_kimg * 1000)
        self.start_nimg = cur_nimg
        self.next_tick_nimg = (cur_nimg // self.tick_nimg + 1) * self.tick_nimg
        self.clock = TickClock(cur_nimg)
        self.bad_ticks, self.stopped_by, self.done = 0, "kimg", False

    @property
    def finished(self) -> bool:
        """Whether the run had nothing left to train when the schedule began."""
        return self.start_nimg >= self.total_nimg

    def check_stop(self, cur_nimg: int, signal_name: str | None) -> bool:
        """Whether the run stops after this iteration (--kimg reached, --max-minutes passed, a signal)."""
        self.done = cur_nimg >= self.total_nimg
        if self.max_minutes is not None and self.clock.minutes() >= self.max_minutes:
            self.done, self.stopped_by = True, "time"
        if signal_name is not None:
            self.done, self.stopped_by = True, signal_name
        return self.done

    def tick_due(self, cur_nimg: int) -> bool:
        return self.done or cur_nimg >= self.next_tick_nimg

    def after_tick(self, cur_nimg: int, cur_tick: int, record: dict, sec_per_kimg: float) -> TickPlan:
        """What follows a tick's end: the ETA for its line, whether a snapshot is scheduled, whether its losses
        are finite, whether the run diverged (DIVERGENCE_TICKS non-finite ticks in a row) and, at the last
        tick, the run's summary."""
        finite = math.isfinite(record.get("Loss/G/loss", math.nan)) and math.isfinite(
            record.get("Loss/D/loss", math.nan))
        self.bad_ticks = 0 if finite else self.bad_ticks + 1
        boundary = cur_nimg // self.tick_nimg
        scheduled = self.snap_ticks > 0 and cur_nimg >= self.next_tick_nimg and boundary % self.snap_ticks == 0
        self.next_tick_nimg = (boundary + 1) * self.tick_nimg
        summary = None
        if self.done:  # why and where the run stopped, and what it trained this time (the loop adds the snapshots)
            summary = {"stopped_by": self.stopped_by, "kimg": cur_nimg / 1000, "ticks": cur_tick,
                       "trained_kimg": (cur_nimg - self.start_nimg) / 1000, "minutes": self.clock.minutes()}
        return TickPlan(self._eta(cur_nimg, sec_per_kimg), scheduled, finite, self.bad_ticks >= DIVERGENCE_TICKS,
                        summary)

    def diverged(self, cur_nimg: int, run_dir: Path) -> TrainingDiverged:
        return TrainingDiverged(
            f"training diverged: non-finite losses for {self.bad_ticks} ticks in a row at kimg "
            f"{cur_nimg / 1000:.1f}; the last good state in {run_dir} is intact. Try a larger --gamma, "
            "a lower learning rate (--optim.lr_g/--optim.lr_d) or fp32 (--G.num_fp16_res=0)")

    def _eta(self, cur_nimg: int, sec_per_kimg: float) -> float | None:
        """Seconds left (None at the last tick): the rest of --kimg at this tick's speed, or the time limit if
        that comes first."""
        if self.done:
            return None
        eta = (self.total_nimg - cur_nimg) / 1000 * sec_per_kimg
        if self.max_minutes is not None:
            eta = min(eta, self.max_minutes * 60 - (time.time() - self.clock.t_start))
        return eta


@dataclass(frozen=True)
class TickPlan:
    eta: float | None  # seconds left, for the tick's line (None: the last tick)
    scheduled: bool  # a snapshot is due at this tick
    finite: bool  # the tick's G and D losses are finite
    diverged: bool  # too many non-finite ticks in a row: the run ends with TrainingDiverged
    summary: dict | None = None  # at the last tick: why and where the run stopped, minutes and kimg trained
