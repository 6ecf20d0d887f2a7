"""The training loop (Karras et al. 2020; StyleGAN2 App. B): a short driver over parts that can be called
on their own: session.setup (the trainer, resumed from the run's newest intact state or started from transfer
weights), trainer.run_iteration (one iteration), trainer.end_tick (statistics of a tick) and `save_snapshot`.

A run's lifecycle is one RunSession (session.py: run files, monitor, stop flag, all released once), its
timetable one Schedule (schedule.py: ticks, snapshots, stop, divergence). What a run shows and writes besides
its state is in monitor.py; per-tick hooks (`tick_hooks`) see the trainer and the tick's record.
"""

from __future__ import annotations

from pathlib import Path

from adagan.config import TrainConfig
from adagan.training import checkpoint, stats
from adagan.training.distributed import Context, any_rank, barrier, check_in_sync
from adagan.training.schedule import Schedule
from adagan.training.session import RunSession, setup
from adagan.training.trainer import Trainer, _make_optimizer, build_phases, end_tick, run_iteration, run_phase
from adagan.training.transfer import shape_differences

__all__ = ["Trainer", "_make_optimizer", "build_phases", "end_tick", "run_iteration", "run_phase", "save_snapshot",
           "setup", "shape_differences", "training_loop"]


def save_snapshot(t: Trainer, run: RunSession, metrics_fn=None, *, scheduled: bool = True) -> None:
    """Network snapshot, fakes grid, training state (main process), then the metrics on every rank.

    An unscheduled snapshot (a stop between two snapshots) whose kimg already has a snapshot from earlier in
    that kimg saves the training state only: the scheduled snapshot, its grid and metrics stay as they were.
    """
    cur_nimg, monitor = t.state.progress.cur_nimg, run.monitor
    path = checkpoint.snapshot_path(run.run_dir, cur_nimg)
    kept_nimg = checkpoint.snapshot_nimg(path) if t.ctx.is_main and not scheduled else None
    keep = kept_nimg not in (None, cur_nimg)
    if not scheduled:  # the main process reads the file; every rank then skips the metrics alike
        keep = any_rank(t.ctx, keep)
    if t.ctx.is_main:
        run.files.save_state(t.state, snapshot=not keep)
        if keep:
            monitor.log(f"kept {path.name} ({kept_nimg / 1000:.3f} kimg); the networks at {cur_nimg / 1000:.3f} "
                        "kimg are in the training state")
        else:
            monitor.fakes_grid(t.G_ema, cur_nimg)
        monitor.report()
    barrier(t.ctx)
    if metrics_fn is not None and t.config.metrics and not keep:
        monitor.metrics(metrics_fn(path, t.G_ema), cur_nimg / 1000)


def training_loop(config: TrainConfig, ctx: Context, run_dir: Path, dataset, *, resume_weights: Path | None = None,
                  resume_label: str | None = None, progress_bar: bool | None = None, metrics_fn=None, tick_hooks=(),
                  iteration_hooks=()) -> dict:
    """Train until config.kimg (or config.max_minutes, or a stop signal). Returns a summary dict.

    dataset: an adagan.data.ImageDataset (already opened with the run's options).
    resume_weights: a network file to initialise G/D/G_ema from (transfer learning);
      ignored when run_dir already holds a training state (then the run resumes exactly).
    resume_label: that network as the user named it (builtin:NAME, a URL), recorded in the snapshots.
    metrics_fn(snapshot_path, G_ema) -> dict, called at each snapshot on every rank.
    tick_hooks: hook(trainer, record) called on every rank at the end of each tick, after its line is
      written (record: the tick's stats.jsonl line).
    iteration_hooks: hook(trainer) called on every rank after each iteration (keep them cheap), e.g. the
      adaptive thread count of run._worker.
    """
    with RunSession(config, ctx, run_dir) as run:
        t, resumed = setup(config, ctx, run.run_dir, dataset, resume_weights=resume_weights,
                           resume_label=resume_label, log=run.monitor.log, files=run.files)
        run.own(t.close)
        prog, schedule = t.state.progress, Schedule(config, t.state.progress.cur_nimg)
        if resumed and schedule.finished:  # a finished run, rerun: nothing to train
            return run.finish({"stopped_by": "complete", "kimg": prog.cur_nimg / 1000, "ticks": prog.cur_tick,
                               "trained_kimg": 0.0, "minutes": 0.0, "total_kimg": config.kimg,
                               "snapshot": checkpoint.newest_snapshot(run.run_dir)})
        run.monitor.start(t, resumed=resumed, progress_bar=progress_bar)
        schedule.clock.restart_run()  # the run's clock starts with its first iteration
        collector, last_snapshot = stats.Collector(), None
        run.own(collector.close)
        run.watch_signals()
        while True:
            run_iteration(t)
            for hook in iteration_hooks:
                hook(t)
            run.monitor.advance(config.batch)
            done = schedule.check_stop(prog.cur_nimg, run.stop_signal())
            if not schedule.tick_due(prog.cur_nimg):
                continue
            record, sec_per_kimg = end_tick(t, collector, schedule.clock)
            plan = schedule.after_tick(prog.cur_nimg, prog.cur_tick, record, sec_per_kimg)
            run.monitor.tick(record, sec_per_kimg=sec_per_kimg, eta=plan.eta)
            for hook in tick_hooks:
                hook(t, record)
            check_in_sync(ctx, t.G, t.D)
            if plan.diverged:
                raise schedule.diverged(prog.cur_nimg, run.run_dir)
            if (done or plan.scheduled) and plan.finite:
                save_snapshot(t, run, metrics_fn, scheduled=plan.scheduled or schedule.stopped_by == "kimg")
                last_snapshot = str(checkpoint.snapshot_path(run.run_dir, prog.cur_nimg))
            schedule.clock.restart(prog.cur_nimg)
            if done:
                break
        # snapshot: the one written at the end (None when the last tick's losses were not finite: nothing saved).
        return run.finish({**plan.summary, "snapshot": last_snapshot if plan.finite else None,
                           "last_good": checkpoint.newest_snapshot(run.run_dir)})
