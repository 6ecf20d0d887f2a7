"""The training loop (Karras et al. 2020; StyleGAN2 App. B): a short driver over phases that can be
called on their own: `setup` (networks, augmentation, phases, the TrainState, resume), `run_iteration`
(one iteration), `end_tick` (statistics of a tick) and `save_snapshot`.

One iteration processes `batch` real images (split over processes, then into rounds of
`batch_gpu` with gradients averaged) through the phases Gmain, Greg (every pl_interval),
Dmain, Dreg (every r1_interval), or Gboth / Dboth every iteration when a regularization
interval is None or 0 (`build_phases`). Each generated image gets the label of a random
dataset image. All randomness of iteration k is drawn after seeding from (seed, rank, k),
so a resumed run repeats the uninterrupted one exactly. What a run shows and writes besides
its state is in monitor.py; per-tick hooks (`tick_hooks`) see the trainer and the tick's record.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from adagan.augment import build_augment
from adagan.config import LossConfig, OptimConfig, TrainConfig
from adagan.data import InfiniteSampler
from adagan.errors import AdaganError, ConfigError, TrainingDiverged
from adagan.networks import Discriminator, Generator
from adagan.ops.image import to_float
from adagan.training import checkpoint, stats
from adagan.training.distributed import (
    Context,
    all_reduce_sum,
    any_rank,
    average_gradients,
    barrier,
    broadcast_module,
    check_in_sync,
)
from adagan.training.ema import ema_beta, update_ema
from adagan.training.loss import StyleGAN2Loss
from adagan.training.monitor import Monitor, PhaseTimer, StopFlag, TickClock, peak_ram_gb
from adagan.training.state import TrainState

# Statistics summed over ranks each tick (the same list on every rank).
REDUCED_STATS = [
    "Loss/G/loss", "Loss/G/reg", "Loss/D/loss", "Loss/D/reg", "Loss/scores/real", "Loss/scores/fake",
    "Loss/signs/real", "Loss/signs/fake", "Loss/r1_penalty", "Loss/pl_penalty",
    "Loss/lecam/penalty", "Loss/lecam/ema_real", "Loss/lecam/ema_fake",
]
DIVERGENCE_TICKS = 3  # non-finite losses this many ticks in a row stop the run


@dataclass
class Phase:
    name: str
    module: torch.nn.Module
    opt: torch.optim.Optimizer
    interval: int


def iteration_seed(seed: int, rank: int, batch_idx: int) -> int:
    """Seed for all randomness of one iteration on one rank (position-derived)."""
    return (seed * 1_000_003 + rank * 7_919 + batch_idx * 104_729) % (2**63 - 1)


def _make_optimizer(module, lr: float, betas, eps: float, reg_interval: int | None):
    # Lazy regularization (StyleGAN2 App. B): scale lr and betas by k/(k+1); None or 0 = not lazy, unscaled.
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    return torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=tuple(b**ratio for b in betas), eps=eps)


def build_phases(G: torch.nn.Module, D: torch.nn.Module, loss: LossConfig, optim: OptimConfig) -> list[Phase]:
    """The phases of one iteration, in order, with one Adam per network (as the official training_loop.py).

    Lazy (interval k >= 1): `<G|D>main` every iteration and `<G|D>reg` every k-th with gain k; Adam gets
    the k/(k+1) correction whether or not the regularizer is on (so `cifar`, with pl_weight 0, trains G with
    lr * 4/5 like the official code). A regularizer with weight 0 gets no phase at all (the official loop
    runs it and finds nothing to do for G; for D with gamma 0 it takes a zero-gradient Adam step).
    Not lazy (interval None or 0): one `<G|D>both` phase every iteration, main loss and regularizer together,
    Adam unscaled.
    """
    phases = []
    for name, module, lr, interval, weight in (("G", G, optim.lr_g, loss.pl_interval, loss.pl_weight),
                                               ("D", D, optim.lr_d, loss.r1_interval, loss.r1_gamma)):
        if interval is not None and interval < 0:
            what = "pl_interval" if name == "G" else "r1_interval"
            raise ConfigError(f"loss.{what} must be >= 1 (lazy) or None/0 (every step), got {interval}")
        opt = _make_optimizer(module, lr, (optim.beta1, optim.beta2), optim.eps, interval)
        if not interval:
            phases.append(Phase(f"{name}both", module, opt, 1))
            continue
        phases.append(Phase(f"{name}main", module, opt, 1))
        if weight != 0:
            phases.append(Phase(f"{name}reg", module, opt, interval))
    return phases


def dataset_labels(dataset) -> torch.Tensor:
    """float32 [len(dataset), c_dim]: the label of every dataset index (mirrored copies included)."""
    return torch.stack([dataset.get_label(i) for i in range(len(dataset))])


def draw_gen_c(labels: torch.Tensor, n: int) -> torch.Tensor:
    """Labels for n generated images: those of n dataset images drawn uniformly with replacement (the
    dataset's label distribution, independent of the reals in the batch; official training_loop.py).
    Uses the global RNG of `labels.device`, which the loop seeds per iteration."""
    return labels[torch.randint(labels.shape[0], [n], device=labels.device)]


def frozen_d_params(D: Discriminator, freezed: int) -> set[int]:
    """ids of the parameters of the first `freezed` D layers, counted from the highest resolution."""
    names = D.layer_names()[:freezed]
    out = set()
    for name, p in D.named_parameters():
        if any(name == n or name.startswith(n + ".") for n in names):
            out.add(id(p))
    return out


@dataclass
class Trainer:
    """One process's training: what `setup` builds and the phases of the loop use."""

    config: TrainConfig
    ctx: Context
    dataset: object  # adagan.data.ImageDataset
    G: Generator
    D: Discriminator
    G_ema: Generator
    augment_pipe: torch.nn.Module | None
    controller: object | None  # adagan.augment.AdaController
    loss: StyleGAN2Loss
    phases: list[Phase]
    state: TrainState
    files: checkpoint.RunFiles | None  # the run directory's lock and state files (main process only)
    batch_gpu: int  # images per round
    rounds: int  # rounds per iteration on this process (gradients accumulate over them)
    frozen: set[int] = field(default_factory=set)  # ids of the Freeze-D parameters
    labels: torch.Tensor | None = None  # every dataset image's label, for the fakes' labels
    timer: PhaseTimer | None = None
    reduce: Callable[[torch.Tensor], None] | None = None  # in-place sum over ranks (None alone)
    close: Callable[[], None] = lambda: None

    def __post_init__(self):
        self.samples = iter(self.state.sampler)


def setup(config: TrainConfig, ctx: Context, run_dir: Path, dataset, *, resume_weights: Path | None = None,
          log=print, files: checkpoint.RunFiles | None = None) -> tuple[Trainer, bool]:
    """Build everything one process trains with; resume from run_dir's newest intact state, else initialise
    from `resume_weights` (transfer learning). files: the main process's opened RunFiles (None: opened here
    on the main process). Returns (trainer, resumed)."""
    device = ctx.device
    if files is None and ctx.is_main:
        files = checkpoint.RunFiles(run_dir, config, log)
        files.open()
    torch.backends.cuda.matmul.allow_tf32 = config.allow_tf32  # off unless asked (official --allow-tf32)
    torch.backends.cudnn.allow_tf32 = config.allow_tf32
    torch.backends.cudnn.benchmark = device.type == "cuda" and config.cudnn_benchmark
    torch.manual_seed(config.seed)
    G = Generator(config.G).train().requires_grad_(False).to(device)
    D = Discriminator(config.D).train().requires_grad_(False).to(device)
    if config.channels_last and device.type == "cuda":
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval()
    for net in (G, D):
        broadcast_module(ctx, net)
    G_ema.load_state_dict(G.state_dict())
    augment_pipe, controller = build_augment(config.augment, config.batch, device)
    phases = build_phases(G, D, config.loss, config.optim)
    autocast_dtype = torch.bfloat16 if (config.amp_bf16 and device.type == "cuda") else None
    reduce = all_reduce_sum(ctx)
    loss = StyleGAN2Loss(G, D, augment_pipe, config.loss, autocast_dtype=autocast_dtype, all_reduce=reduce)
    sampler = InfiniteSampler(len(dataset), rank=ctx.rank, num_replicas=ctx.world_size, seed=config.seed)
    state = TrainState(G=G, D=D, G_ema=G_ema, opt_G=phases[0].opt, opt_D=phases[-1].opt, loss=loss, sampler=sampler,
                       controller=controller)
    if files is not None:
        resumed_from = files.resume(state)
    else:  # other ranks: the newest state that loads (the main process names the damaged ones)
        resumed_from = None
        for path in reversed(checkpoint.list_states(run_dir)):
            try:
                checkpoint.load(path, state)
            except AdaganError:
                continue
            resumed_from = path
            break
    if resumed_from is not None:
        log(f"Resuming from {resumed_from.name} at kimg {state.progress.cur_nimg / 1000:.1f} "
            f"(tick {state.progress.cur_tick}).")
    elif resume_weights is not None:
        _load_transfer_weights(resume_weights, G, D, G_ema, log)
    batch_gpu = min(config.batch_gpu, config.batch // ctx.world_size)
    unsubscribe = stats.subscribe("Loss/signs/real", controller.accumulate) if controller else (lambda: None)

    def close():
        unsubscribe()
        if files is not None:
            files.close()

    trainer = Trainer(config, ctx, dataset, G, D, G_ema, augment_pipe, controller, loss, phases, state, files,
                      batch_gpu, config.batch // ctx.world_size // batch_gpu, frozen=frozen_d_params(D, config.freezed),
                      labels=dataset_labels(dataset).to(device) if config.G.c_dim else None,
                      timer=PhaseTimer(device), reduce=reduce, close=close)
    return trainer, resumed_from is not None


def run_iteration(t: Trainer) -> None:
    """One iteration: every phase due at this batch_idx, then G_ema, the counters and ADA's p."""
    config, prog, device = t.config, t.state.progress, t.ctx.device
    torch.manual_seed(iteration_seed(config.seed, t.ctx.rank, prog.batch_idx))
    img_u8, labels = t.dataset.get_batch([next(t.samples) for _ in range(config.batch // t.ctx.world_size)])
    real_img = to_float(img_u8, device).split(t.batch_gpu)
    real_c = labels.to(device).split(t.batch_gpu) if config.G.c_dim else [None] * t.rounds
    for phase in t.phases:
        if prog.batch_idx % phase.interval == 0:
            run_phase(t, phase, real_img, real_c)
    update_ema(t.G_ema, t.G, ema_beta(prog.cur_nimg, config.batch, config.ema_kimg, config.ema_rampup))
    prog.cur_nimg += config.batch
    prog.batch_idx += 1
    if t.controller is not None and prog.batch_idx % config.augment.interval == 0:
        t.controller.step(prog.batch_idx, all_reduce=t.reduce or (lambda x: None))


def run_phase(t: Trainer, phase: Phase, real_img: list[torch.Tensor], real_c: list) -> None:
    """Forward/backward of one phase over every round, averaged gradients, one optimizer step."""
    start = t.timer.start()
    phase.opt.zero_grad(set_to_none=True)
    phase.module.requires_grad_(True)
    if phase.module is t.D and t.frozen:
        for p in t.D.parameters():
            if id(p) in t.frozen:
                p.requires_grad_(False)
    for r in range(t.rounds):
        gen_z = torch.randn([t.batch_gpu, t.config.G.z_dim], device=t.ctx.device)
        gen_c = draw_gen_c(t.labels, t.batch_gpu) if t.labels is not None else None
        t.loss.accumulate_gradients(phase.name, real_img[r], real_c[r], gen_z, gen_c, gain=phase.interval / t.rounds)
    phase.module.requires_grad_(False)
    average_gradients(t.ctx, list(phase.module.parameters()))
    phase.opt.step()
    t.timer.stop(phase.name, start)


def end_tick(t: Trainer, collector: stats.Collector, clock: TickClock) -> tuple[dict, float]:
    """Count the tick and gather its statistics over ranks; returns (stats.jsonl record, sec/kimg)."""
    prog = t.state.progress
    prog.cur_tick += 1
    now, tick_time, sec_per_kimg = clock.tick(prog.cur_nimg)
    t.timer.flush()
    stats.report("Timing/sec_per_tick", tick_time)
    stats.report("Timing/sec_per_kimg", sec_per_kimg)
    stats.report("Resources/peak_ram_gb", peak_ram_gb())
    if t.ctx.device.type == "cuda":
        stats.report("Resources/peak_gpu_mem_gb", torch.cuda.max_memory_allocated(t.ctx.device) / 2**30)
        torch.cuda.reset_peak_memory_stats(t.ctx.device)
    collector.reduce(t.reduce, REDUCED_STATS)
    means = {k: v["mean"] for k, v in collector.drain().items()}
    # r_t over the whole tick (the controller's own value covers only its last few batches).
    r_t = means.get("Loss/signs/real", t.controller.r_t if t.controller is not None else None)
    p = float(t.augment_pipe.p) if t.augment_pipe is not None else 0.0
    record = {"Progress/tick": prog.cur_tick, "Progress/kimg": prog.cur_nimg / 1000, "Progress/augment": p,
              "Progress/r_t": r_t, "Progress/time_s": round(now - clock.t_start, 2), **means}
    return record, sec_per_kimg


def save_snapshot(t: Trainer, run_dir: Path, monitor: Monitor, metrics_fn=None, *, scheduled: bool = True) -> None:
    """Network snapshot, fakes grid, training state (main process), then the metrics on every rank.

    An unscheduled snapshot (a stop between two snapshots) whose kimg already has a snapshot from earlier in
    that kimg saves the training state only: the scheduled snapshot, its grid and metrics stay as they were.
    """
    cur_nimg = t.state.progress.cur_nimg
    path = checkpoint.snapshot_path(run_dir, cur_nimg)
    kept_nimg = _snapshot_nimg(path) if t.ctx.is_main and not scheduled else None
    keep = kept_nimg not in (None, cur_nimg)
    if not scheduled:  # the main process reads the file; every rank then skips the metrics alike
        keep = any_rank(t.ctx, keep)
    if t.ctx.is_main:
        if keep:
            monitor.log(f"kept {path.name} ({kept_nimg / 1000:.3f} kimg); the networks at {cur_nimg / 1000:.3f} "
                        "kimg are in the training state")
        else:
            checkpoint.save_snapshot(run_dir, t.state, t.config)
            monitor.fakes_grid(t.G_ema, cur_nimg)
        if t.files is not None:
            t.files.save(t.state)
        else:
            checkpoint.save(run_dir, t.state, t.config)
        monitor.report()
    barrier(t.ctx)
    if metrics_fn is not None and t.config.metrics and not keep:
        monitor.metrics(metrics_fn(path, t.G_ema), cur_nimg / 1000)


def training_loop(config: TrainConfig, ctx: Context, run_dir: Path, dataset, *, resume_weights: Path | None = None,
                  progress_bar: bool | None = None, metrics_fn=None, tick_hooks=(), iteration_hooks=()) -> dict:
    """Train until config.kimg (or config.max_minutes, or a stop signal). Returns a summary dict.

    dataset: an adagan.data.ImageDataset (already opened with the run's options).
    resume_weights: a network file to initialise G/D/G_ema from (transfer learning);
      ignored when run_dir already holds a training state (then the run resumes exactly).
    metrics_fn(snapshot_path, G_ema) -> dict, called at each snapshot on every rank.
    tick_hooks: hook(trainer, record) called on every rank at the end of each tick, after its line is
      written (record: the tick's stats.jsonl line).
    iteration_hooks: hook(trainer) called on every rank after each iteration (keep them cheap), e.g. the
      adaptive thread count of run._worker.
    """
    run_dir = Path(run_dir)
    files = None
    if ctx.is_main:  # the lock, a writable directory and no stale temporaries, before log.txt is opened
        files = checkpoint.RunFiles(run_dir, config)
        files.open()
    try:
        monitor = Monitor(run_dir, ctx)
    except BaseException:
        if files is not None:
            files.close()
        raise
    if files is not None:
        files.log = monitor.log
        for note in files.notes:
            monitor.log(note)
    try:
        t, resumed = setup(config, ctx, run_dir, dataset, resume_weights=resume_weights, log=monitor.log,
                           files=files)
    except BaseException:
        if files is not None:
            files.close()
        monitor.close()
        raise
    prog = t.state.progress
    start_nimg, total_nimg, tick_nimg = prog.cur_nimg, int(config.kimg * 1000), int(config.tick_kimg * 1000)
    if resumed and prog.cur_nimg >= total_nimg:  # a finished run, rerun: nothing to train
        t.close()
        monitor.close()
        return monitor.finish({"stopped_by": "complete", "kimg": prog.cur_nimg / 1000, "ticks": prog.cur_tick,
                               "trained_kimg": 0.0, "minutes": 0.0, "total_kimg": config.kimg,
                               "snapshot": _newest_snapshot(run_dir)})
    monitor.start(t, resumed=resumed, progress_bar=progress_bar)
    next_tick_nimg = (prog.cur_nimg // tick_nimg + 1) * tick_nimg
    collector, clock, stop, bad_ticks, stopped_by = stats.Collector(), TickClock(prog.cur_nimg), StopFlag(), 0, "kimg"
    last_snapshot, finite = None, True
    stop.install()
    try:
        while True:
            run_iteration(t)
            for hook in iteration_hooks:
                hook(t)
            monitor.advance(config.batch)
            done = prog.cur_nimg >= total_nimg
            if config.max_minutes is not None and clock.minutes() >= config.max_minutes:
                done, stopped_by = True, "time"
            if any_rank(ctx, stop.stop):
                done, stopped_by = True, stop.signal_name or "signal"
            # Ticks end where cur_nimg crosses a multiple of tick_kimg, so resuming keeps the schedule.
            if not done and prog.cur_nimg < next_tick_nimg:
                continue
            record, sec_per_kimg = end_tick(t, collector, clock)
            monitor.tick(record, sec_per_kimg=sec_per_kimg, eta=None if done else _eta(config, prog.cur_nimg,
                                                                                         sec_per_kimg, clock))
            for hook in tick_hooks:
                hook(t, record)
            check_in_sync(ctx, t.G, t.D)
            finite = math.isfinite(record.get("Loss/G/loss", math.nan)) and math.isfinite(
                record.get("Loss/D/loss", math.nan))
            bad_ticks = 0 if finite else bad_ticks + 1
            if bad_ticks >= DIVERGENCE_TICKS:
                raise TrainingDiverged(
                    f"training diverged: non-finite losses for {bad_ticks} ticks in a row at kimg "
                    f"{prog.cur_nimg / 1000:.1f}; the last good state in {run_dir} is intact. Try a larger --gamma, "
                    "a lower learning rate (--optim.lr_g/--optim.lr_d) or fp32 (--G.num_fp16_res=0)")
            boundary = prog.cur_nimg // tick_nimg
            scheduled = config.snap_ticks > 0 and prog.cur_nimg >= next_tick_nimg and boundary % config.snap_ticks == 0
            next_tick_nimg = (boundary + 1) * tick_nimg
            if (done or scheduled) and finite:
                save_snapshot(t, run_dir, monitor, metrics_fn, scheduled=scheduled or stopped_by == "kimg")
                last_snapshot = str(checkpoint.snapshot_path(run_dir, prog.cur_nimg))
            clock.restart(prog.cur_nimg)
            if done:
                break
    finally:
        stop.restore()
        t.close()
        collector.close()
        monitor.close()
    # snapshot: the one written at the end (None when the last tick's losses were not finite: nothing saved).
    return monitor.finish({"stopped_by": stopped_by, "kimg": prog.cur_nimg / 1000, "ticks": prog.cur_tick,
                           "trained_kimg": (prog.cur_nimg - start_nimg) / 1000, "minutes": clock.minutes(),
                           "snapshot": last_snapshot if finite else None, "last_good": _newest_snapshot(run_dir)})


def _snapshot_nimg(path: Path) -> int | None:
    """cur_nimg recorded in an existing snapshot; None when there is none (or it cannot be read)."""
    from adagan.io import read_metadata

    if not path.is_file():
        return None
    try:
        nimg = read_metadata(path).get("meta.cur_nimg")
    except (AdaganError, OSError, ValueError):
        return None
    return nimg if isinstance(nimg, int) else None


def _newest_snapshot(run_dir: Path) -> str | None:
    snaps = sorted(Path(run_dir).glob("network-snapshot-[0-9]*.safetensors"))
    return str(snaps[-1]) if snaps else None


def _eta(config: TrainConfig, cur_nimg: int, sec_per_kimg: float, clock: TickClock) -> float:
    """Seconds left: the rest of --kimg at this tick's speed, or the time limit if that comes first."""
    eta = (int(config.kimg * 1000) - cur_nimg) / 1000 * sec_per_kimg
    if config.max_minutes is not None:
        eta = min(eta, config.max_minutes * 60 - (time.time() - clock.t_start))
    return eta


def _load_transfer_weights(path: Path, G, D, G_ema, log) -> None:
    from adagan.io import load_networks, network_config, read_metadata

    info = read_metadata(path)
    present = info.get("networks", [])
    for name, net in (("G", G), ("D", D)):  # the file's networks must be this run's shape, field by field
        key = f"config.{name}"
        if key in info and any(n in present for n in ((name,) if name == "D" else ("G", "G_ema"))):
            theirs_cfg = network_config(name, info[key], path)
            differ = shape_differences(theirs_cfg, net.cfg)
            if differ:
                data_bound = [k for k, _, _ in differ if k in ("img_resolution", "img_channels", "c_dim")]
                keys = [k for k, _, _ in differ if k not in data_bound and k != "channels"]
                keys += ["channel_base", "channel_max"] if any(k == "channels" for k, _, _ in differ) else []
                flags = " ".join(f"--{name}.{k}={getattr(theirs_cfg, k)}" for k in keys)
                hint = (f"; pass {flags} to build the same network" if not data_bound else
                        "; use a network made for data of this resolution, channel count and labels")
                raise AdaganError(f"--resume {path}: its {name} does not fit this run: "
                                  + ", ".join(f"{k} {theirs} (this run: {mine})" for k, theirs, mine in differ) + hint)
    nets = load_networks(path, tuple(n for n in ("G", "D", "G_ema") if n in present))
    for name, target in (("G", G), ("D", D), ("G_ema", G_ema)):
        src = nets.get(name) or (nets.get("G_ema") if name == "G" else nets.get("G") if name == "G_ema" else None)
        if src is None:
            log(f"--resume: {path} has no {name}; it starts from scratch")
            continue
        mine, theirs = target.state_dict(), src.state_dict()
        bad = [k for k in mine if k not in theirs or theirs[k].shape != mine[k].shape]
        if bad or set(theirs) != set(mine):
            raise AdaganError(f"--resume {path}: its {name} does not fit this run ({len(bad)} tensors differ, e.g. "
                              f"{(bad or sorted(set(theirs) ^ set(mine)))[0]}); use a network of the same resolution, "
                              "channels, labels and preset")
        target.load_state_dict(theirs, strict=True)
    log(f"Initialised G, D and G_ema from {path}")


# Config fields that decide which tensors a network has and their shapes (or how they are used), by network.
SHAPE_FIELDS = {"G": ("architecture", "img_resolution", "img_channels", "c_dim", "z_dim", "w_dim", "map_layers"),
                "D": ("architecture", "img_resolution", "img_channels", "c_dim", "mbstd_num_channels")}


def shape_differences(theirs, mine) -> list[tuple[str, object, object]]:
    """(field, their value, mine) for every shaping field in which two G (or two D) configs differ; the
    feature maps per resolution count as one field 'channels'."""
    from adagan.networks.generator import block_resolutions, channels_at

    name = "D" if hasattr(mine, "mbstd_group_size") else "G"
    fields = SHAPE_FIELDS[name] + (("cmap_dim", "map_layers") if name == "D" and mine.c_dim else ())
    out = [(k, getattr(theirs, k), getattr(mine, k)) for k in fields if getattr(theirs, k) != getattr(mine, k)]
    res = block_resolutions(min(mine.img_resolution, theirs.img_resolution))
    ch_t = [channels_at(r, theirs.channel_base, theirs.channel_max) for r in res]
    ch_m = [channels_at(r, mine.channel_base, mine.channel_max) for r in res]
    if ch_t != ch_m:
        out.append(("channels", ch_t, ch_m))
    return out
