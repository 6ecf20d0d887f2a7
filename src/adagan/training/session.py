"""One training run's lifecycle on one process: what it holds open, and that each is released once.

A `RunSession` is a context: entering it takes the run directory (the main process's RunFiles: the lock,
crash leftovers; docs/limits.md "Crash safety") and opens the monitor (log.txt, the console), and the
session then owns whatever the run adds (the trainer's subscriptions, the stop flag's signal handlers,
the statistics collector). Leaving it, however the run ends, releases them all, newest first.
`setup` builds a process's trainer and resumes it from the run's newest intact state, else starts it from
transfer weights (`--resume FILE`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from adagan.config import TrainConfig
from adagan.training import checkpoint
from adagan.training.checkpoint import RunFiles
from adagan.training.distributed import Context, any_rank
from adagan.training.monitor import Monitor
from adagan.training.schedule import StopFlag
from adagan.training.trainer import Trainer, build_trainer
from adagan.training.transfer import load_transfer_weights, record_origin


class RunSession:
    """The run files (main process only; None elsewhere), the monitor and the stop flag of one run."""

    def __init__(self, config: TrainConfig, ctx: Context, run_dir: Path):
        self.config, self.ctx, self.run_dir = config, ctx, Path(run_dir)
        self.files: RunFiles | None = None
        self.monitor: Monitor | None = None
        self.stop = StopFlag()
        self._closers: list[Callable[[], None]] = []

    def __enter__(self) -> RunSession:
        try:
            if self.ctx.is_main:  # the lock, a writable directory and no stale temporaries, before log.txt opens
                self.files = RunFiles(self.run_dir, self.config)
                self.files.open()
                self.own(self.files.close)
            self.monitor = Monitor(self.run_dir, self.ctx)
            self.own(self.monitor.close)
        except BaseException:
            self.close()
            raise
        if self.files is not None:
            self.files.log = self.monitor.log
            for note in self.files.notes:
                self.monitor.log(note)
        return self

    def own(self, close: Callable[[], None]) -> None:
        """Release `close` when the session ends (after what was owned later)."""
        self._closers.append(close)

    def watch_signals(self) -> None:
        """From now on SIGINT/SIGTERM ask the run to stop after the iteration (restored when it ends)."""
        self.stop.install()
        self.own(self.stop.restore)

    def stop_signal(self) -> str | None:
        """The signal that asked any rank to stop (its name), else None; call it on every rank alike."""
        return (self.stop.signal_name or "signal") if any_rank(self.ctx, self.stop.stop) else None

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()

    def finish(self, summary: dict) -> dict:
        """Release everything, then the closing line (monitor.finish, which closes log.txt). The summary."""
        self.close()
        return self.monitor.finish(summary)

    def __exit__(self, *exc) -> None:
        self.close()


def setup(config: TrainConfig, ctx: Context, run_dir: Path, dataset, *, resume_weights: Path | None = None,
          resume_label: str | None = None, log=print,
          files: checkpoint.RunFiles | None = None) -> tuple[Trainer, bool]:
    """The trainer of one process, resumed from run_dir's newest intact state, else initialised from
    `resume_weights` (transfer learning; resume_label: that network as the user named it). files: the main
    process's opened RunFiles (None: opened here on the main process, and closed by trainer.close()). Returns
    (trainer, resumed)."""
    own = files is None and ctx.is_main
    if own:
        files = checkpoint.RunFiles(run_dir, config, log)
        files.open()
    try:
        t = build_trainer(config, ctx, dataset)
        # The main process names the damaged states it skips; the other ranks load the same newest intact one.
        resumed_from = files.resume(t.state) if files is not None else checkpoint.resume_newest(run_dir, t.state)
    except BaseException:
        if own:
            files.close()
        raise
    if resumed_from is not None:
        log(f"Resuming from {resumed_from.name} at kimg {t.state.progress.cur_nimg / 1000:.1f} "
            f"(tick {t.state.progress.cur_tick}).")
        if t.state.origin.network is None and resume_weights is not None:  # a state saved before runs kept it
            record_origin(resume_weights, t.state, resume_label)
    elif resume_weights is not None:
        load_transfer_weights(resume_weights, t.state, log, label=resume_label)
    if own:
        unsubscribe, t.close = t.close, lambda: (unsubscribe(), files.close())
    return t, resumed_from is not None
