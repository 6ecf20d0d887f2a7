"""The training loop: phases, lazy regularization, G_ema, ADA, ticks, snapshots, exact resume.

One iteration processes `batch` real images (split over processes, then into rounds of
`batch_gpu` with gradients averaged) through the phases Gmain, Greg (every pl_interval),
Dmain, Dreg (every r1_interval), or Gboth / Dboth every iteration when a regularization
interval is None or 0 (`build_phases`). Each generated image gets the label of a random
dataset image. All randomness of iteration k is drawn after seeding from (seed, rank, k),
so a resumed run repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from adagan.config import LossConfig, OptimConfig, TrainConfig, to_json
from adagan.errors import AdaganError, ConfigError, TrainingDiverged
from adagan.io import save_networks
from adagan.networks import Discriminator, Generator
from adagan.ops.image import make_grid, to_float, to_uint8
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
from adagan.training.loss import StyleGAN2Loss

# Statistics summed over ranks each tick (the same list on every rank).
REDUCED_STATS = [
    "Loss/G/loss", "Loss/G/reg", "Loss/D/loss", "Loss/D/reg", "Loss/scores/real", "Loss/scores/fake",
    "Loss/signs/real", "Loss/signs/fake", "Loss/r1_penalty", "Loss/pl_penalty",
]
DIVERGENCE_TICKS = 3  # non-finite losses this many ticks in a row stop the run


@dataclass
class Phase:
    name: str
    module: torch.nn.Module
    opt: torch.optim.Optimizer
    interval: int


class _PhaseTimer:
    """Reports `Timing/<phase>_ms` per phase call: wall clock on CPU, CUDA events on a GPU.

    CUDA events are read once per tick (`flush`) so timing never stalls the GPU queue.
    """

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.pending: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []

    def start(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def stop(self, name: str, start) -> None:
        if not self.cuda:
            stats.report(f"Timing/{name}_ms", (time.perf_counter() - start) * 1000)
            return
        end = torch.cuda.Event(enable_timing=True)
        end.record()
        self.pending.append((name, start, end))

    def flush(self) -> None:
        for name, start, end in self.pending:
            end.synchronize()
            stats.report(f"Timing/{name}_ms", start.elapsed_time(end))
        self.pending.clear()


def iteration_seed(seed: int, rank: int, batch_idx: int) -> int:
    """Seed for all randomness of one iteration on one rank (position-derived)."""
    return (seed * 1_000_003 + rank * 7_919 + batch_idx * 104_729) % (2**63 - 1)


def _make_optimizer(module, lr: float, betas, eps: float, reg_interval: int | None):
    # Lazy regularization (StyleGAN2 App. B): scale lr and betas by k/(k+1); None or 0 = not lazy, unscaled.
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    return torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=tuple(b**ratio for b in betas), eps=eps)


def build_phases(G: torch.nn.Module, D: torch.nn.Module, lcfg: LossConfig, ocfg: OptimConfig) -> list[Phase]:
    """The phases of one iteration, in order, with one Adam per network (as the official training_loop.py).

    Lazy (interval k >= 1): `<G|D>main` every iteration and `<G|D>reg` every k-th with gain k; Adam gets
    the k/(k+1) correction whether or not the regularizer is on (so `cifar`, with pl_weight 0, trains G with
    lr * 4/5 like the official code). A regularizer with weight 0 gets no phase at all (the official loop
    runs it and finds nothing to do for G; for D with gamma 0 it takes a zero-gradient Adam step).
    Not lazy (interval None or 0): one `<G|D>both` phase every iteration, main loss and regularizer together,
    Adam unscaled.
    """
    phases = []
    for name, module, lr, interval, weight in (("G", G, ocfg.lr_g, lcfg.pl_interval, lcfg.pl_weight),
                                               ("D", D, ocfg.lr_d, lcfg.r1_interval, lcfg.r1_gamma)):
        if interval is not None and interval < 0:
            what = "pl_interval" if name == "G" else "r1_interval"
            raise ConfigError(f"loss.{what} must be >= 1 (lazy) or None/0 (every step), got {interval}")
        opt = _make_optimizer(module, lr, (ocfg.beta1, ocfg.beta2), ocfg.eps, interval)
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


def save_image_grid(images: torch.Tensor, path: Path, grid: tuple[int, int]) -> None:
    """images: float [N, C, H, W] in [-1, 1] -> a PNG grid of grid=(cols, rows)."""
    gw, gh = grid
    img = make_grid(to_uint8(images).permute(0, 2, 3, 1).cpu().numpy(), cols=gw, rows=gh)
    C = img.shape[2]
    pil = Image.fromarray(img[:, :, 0] if C == 1 else img, {1: "L", 3: "RGB", 4: "RGBA"}[C])
    tmp = path.with_name(f".{path.name}.tmp")
    pil.save(tmp, format="PNG")
    os.replace(tmp, path)


def grid_shape(resolution: int) -> tuple[int, int]:
    gw = int(np.clip(1024 // resolution, 4, 16))
    gh = int(np.clip(768 // resolution, 4, 12))
    return gw, gh


class _StopFlag:
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


class Logger:
    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        self.file = open(run_dir / "log.txt", "a") if enabled else None  # noqa: SIM115

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        print(msg, flush=True)
        self.file.write(msg + "\n")
        self.file.flush()

    def close(self):
        if self.file:
            self.file.close()


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s"


def _peak_ram_gb() -> float:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    except (ImportError, AttributeError):
        return float("nan")


def training_loop(cfg: TrainConfig, ctx: Context, run_dir: Path, dataset, *, resume_weights: Path | None = None,
                  progress_bar: bool | None = None, metrics_fn=None) -> dict:
    """Train until cfg.kimg (or cfg.max_minutes, or a stop signal). Returns a summary dict.

    dataset: an adagan.data.ImageDataset (already opened with the run's options).
    resume_weights: a network file to initialise G/D/G_ema from (transfer learning);
      ignored when run_dir already holds a training state (then the run resumes exactly).
    metrics_fn(snapshot_path, G_ema) -> dict, called at each snapshot on every rank.
    """
    from adagan.augment import AdaController, AugmentPipe
    from adagan.data import InfiniteSampler

    run_dir = Path(run_dir)
    device = ctx.device
    log = Logger(run_dir, ctx.is_main)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = device.type == "cuda"

    # Networks.
    torch.manual_seed(cfg.seed)
    G = Generator(cfg.G).train().requires_grad_(False).to(device)
    D = Discriminator(cfg.D).train().requires_grad_(False).to(device)
    if cfg.channels_last and device.type == "cuda":
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval()
    for net in (G, D):
        broadcast_module(ctx, net)
    G_ema.load_state_dict(G.state_dict())

    # Augmentation.
    aug = cfg.augment
    augment_pipe = None
    if aug.mode != "noaug":
        augment_pipe = AugmentPipe(augpipe=aug.augpipe).train().requires_grad_(False).to(device)
    controller = AdaController(augment_pipe, mode=aug.mode, target=aug.target, interval=aug.interval,
                               ada_kimg=aug.ada_kimg, batch=cfg.batch, p=aug.p) if augment_pipe else None
    unsubscribe = stats.subscribe("Loss/signs/real", controller.accumulate) if controller else (lambda: None)

    # Optimizers and phases.
    lcfg = cfg.loss
    phases = build_phases(G, D, lcfg, cfg.optim)
    opt_G, opt_D = phases[0].opt, phases[-1].opt
    frozen = frozen_d_params(D, cfg.freezed)
    autocast_dtype = torch.bfloat16 if (cfg.amp_bf16 and device.type == "cuda") else None
    loss = StyleGAN2Loss(G, D, augment_pipe, lcfg, autocast_dtype=autocast_dtype)

    # Progress counters (restored on resume).
    cur_nimg, cur_tick, batch_idx = 0, 0, 0
    sampler_position = 0
    states = checkpoint.list_states(run_dir)
    if states:
        state = checkpoint.load_training_state(states[-1], G=G, D=D, G_ema=G_ema, opt_G=opt_G, opt_D=opt_D,
                                               device=device)
        prog = state["progress"]
        cur_nimg, cur_tick, batch_idx = prog["cur_nimg"], prog["cur_tick"], prog["batch_idx"]
        sampler_position = state["sampler_position"]
        loss.pl_mean.copy_(state["pl_mean"])
        if controller is not None:
            controller.load_state_dict(state["augment"])
        log(f"Resuming from {states[-1].name} at kimg {cur_nimg / 1000:.1f} (tick {cur_tick}).")
        if ctx.is_main:
            _truncate_stats(run_dir / "stats.jsonl", cur_nimg)
    elif resume_weights is not None:
        _load_transfer_weights(resume_weights, G, D, G_ema, log)
    start_nimg = cur_nimg

    # Data.
    rank_batch = cfg.batch // ctx.world_size
    batch_gpu = min(cfg.batch_gpu, rank_batch)
    rounds = rank_batch // batch_gpu
    sampler = InfiniteSampler(len(dataset), rank=ctx.rank, num_replicas=ctx.world_size, seed=cfg.seed,
                              start=sampler_position)
    sampler_iter = iter(sampler)
    c_dim = cfg.G.c_dim
    all_c = dataset_labels(dataset).to(device) if c_dim else None

    # Fixed grid latents (independent of the global RNG).
    gw, gh = grid_shape(cfg.G.img_resolution)
    grid_z = torch.randn([gw * gh, cfg.G.z_dim], generator=torch.Generator().manual_seed(123))
    grid_c = _grid_labels(dataset, gw, gh, c_dim) if c_dim else None

    def render_grid(path: Path):
        imgs = []
        with torch.no_grad():
            for i in range(0, len(grid_z), batch_gpu):
                c = grid_c[i: i + batch_gpu].to(device) if grid_c is not None else None
                imgs.append(G_ema(grid_z[i: i + batch_gpu].to(device), c, noise_mode="const"))
        save_image_grid(torch.cat(imgs), path, (gw, gh))

    if ctx.is_main:
        (run_dir / "config.json").write_text(to_json(cfg) + "\n")
        if cur_nimg == 0:
            reals = _grid_reals(dataset, gw, gh, c_dim)
            save_image_grid(to_float(reals, "cpu"), run_dir / "reals.png", (gw, gh))
            render_grid(run_dir / "fakes_init.png")
        n_g = sum(p.numel() for p in G.parameters())
        n_d = sum(p.numel() for p in D.parameters())
        log(f"Training {cfg.cfg} at {cfg.G.img_resolution}px on {len(dataset)} images ({dataset.name}), "
            f"G {n_g:,} / D {n_d:,} params, batch {cfg.batch} ({rounds}x{batch_gpu} per process, "
            f"{ctx.world_size} process(es)), device {device}, run dir {run_dir}")

    collector = stats.Collector()
    timer = _PhaseTimer(device)
    stop = _StopFlag()
    stop.install()
    total_nimg = int(cfg.kimg * 1000)
    tick_nimg = int(cfg.tick_kimg * 1000)
    t_start = time.time()
    tick_start_time = t_start
    tick_start_nimg = cur_nimg
    next_tick_nimg = (cur_nimg // tick_nimg + 1) * tick_nimg
    bad_ticks = 0
    reduce = all_reduce_sum(ctx)
    bar = _progress_bar(progress_bar and ctx.is_main, cur_nimg, total_nimg)
    stats_file = run_dir / "stats.jsonl"
    summary = {"stopped_by": "kimg"}
    tb = _tensorboard(run_dir) if ctx.is_main else None

    try:
        while True:
            # ---- one iteration -------------------------------------------------------------
            torch.manual_seed(iteration_seed(cfg.seed, ctx.rank, batch_idx))
            indices = [next(sampler_iter) for _ in range(rank_batch)]
            img_u8, labels = dataset.get_batch(indices)
            real_img = to_float(img_u8, device).split(batch_gpu)
            real_c = labels.to(device).split(batch_gpu) if c_dim else [None] * rounds

            for phase in phases:
                if batch_idx % phase.interval != 0:
                    continue
                phase_start = timer.start()
                phase.opt.zero_grad(set_to_none=True)
                phase.module.requires_grad_(True)
                if phase.module is D and frozen:
                    for p in D.parameters():
                        if id(p) in frozen:
                            p.requires_grad_(False)
                for r in range(rounds):
                    gen_z = torch.randn([batch_gpu, cfg.G.z_dim], device=device)
                    gen_c = draw_gen_c(all_c, batch_gpu) if c_dim else None
                    loss.accumulate_gradients(phase.name, real_img[r], real_c[r], gen_z, gen_c,
                                              gain=phase.interval / rounds)
                phase.module.requires_grad_(False)
                average_gradients(ctx, list(phase.module.parameters()))
                phase.opt.step()
                timer.stop(phase.name, phase_start)

            # G_ema (paper App. D): half-life ema_kimg, ramped up with training length unless ema_rampup is None.
            ema_nimg = cfg.ema_kimg * 1000
            if cfg.ema_rampup is not None:
                ema_nimg = min(ema_nimg, cur_nimg * cfg.ema_rampup)
            beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
            with torch.no_grad():
                for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
                    p_ema.copy_(p.lerp(p_ema, beta))
                for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
                    b_ema.copy_(b)

            cur_nimg += cfg.batch
            batch_idx += 1
            if controller is not None and batch_idx % aug.interval == 0:
                controller.step(batch_idx, all_reduce=reduce or (lambda t: None))
            if bar is not None:
                bar.update(cfg.batch)

            # ---- tick ----------------------------------------------------------------------
            elapsed_min = (time.time() - t_start) / 60
            done = cur_nimg >= total_nimg
            if cfg.max_minutes is not None and elapsed_min >= cfg.max_minutes:
                done, summary["stopped_by"] = True, "time"
            stop_now = any_rank(ctx, stop.stop)
            if stop_now:
                done, summary["stopped_by"] = True, stop.signal_name or "signal"
            # Ticks end where cur_nimg crosses a multiple of tick_kimg, so resuming keeps the schedule.
            if not done and cur_nimg < next_tick_nimg:
                continue

            cur_tick += 1
            now = time.time()
            tick_time = now - tick_start_time
            sec_per_kimg = tick_time / max((cur_nimg - tick_start_nimg) / 1000, 1e-8)
            timer.flush()
            stats.report("Timing/sec_per_tick", tick_time)
            stats.report("Timing/sec_per_kimg", sec_per_kimg)
            stats.report("Resources/peak_ram_gb", _peak_ram_gb())
            if device.type == "cuda":
                stats.report("Resources/peak_gpu_mem_gb", torch.cuda.max_memory_allocated(device) / 2**30)
                torch.cuda.reset_peak_memory_stats(device)
            collector.reduce(reduce, REDUCED_STATS)
            tick_stats = collector.drain()
            p_now = float(augment_pipe.p) if augment_pipe is not None else 0.0
            means = {k: v["mean"] for k, v in tick_stats.items()}
            # r_t over the whole tick (the controller's own value covers only its last few batches).
            r_t = means.get("Loss/signs/real", controller.r_t if controller is not None else None)
            record = {"Progress/tick": cur_tick, "Progress/kimg": cur_nimg / 1000, "Progress/augment": p_now,
                      "Progress/r_t": r_t, "Progress/time_s": round(now - t_start, 2), **means}
            remaining_kimg = (total_nimg - cur_nimg) / 1000
            eta = remaining_kimg * sec_per_kimg
            if cfg.max_minutes is not None:
                eta = min(eta, cfg.max_minutes * 60 - (now - t_start))
            g_loss = means.get("Loss/G/loss", float("nan"))
            d_loss = means.get("Loss/D/loss", float("nan"))
            mem = means.get("Resources/peak_gpu_mem_gb", means.get("Resources/peak_ram_gb", float("nan")))
            if ctx.is_main:
                if bar is not None:
                    bar.clear()
                log(f"tick {cur_tick:<4d} kimg {cur_nimg / 1000:<8.1f} sec/kimg {sec_per_kimg:<7.2f} "
                    f"ETA {_fmt_time(eta) if not done else '-':<10s} augment {p_now:.3f}  "
                    f"r_t {'-' if r_t is None else f'{r_t:.3f}'}  G {g_loss:.3f}  D {d_loss:.3f}  mem {mem:.2f}GB")
                with open(stats_file, "a") as f:
                    f.write(json.dumps(record, allow_nan=True) + "\n")
                if tb is not None:
                    for k, v in record.items():
                        if isinstance(v, int | float) and v is not None:
                            tb.add_scalar(k, v, global_step=int(cur_nimg / 1000))
                    tb.flush()

            check_in_sync(ctx, G, D)
            finite = math.isfinite(g_loss) and math.isfinite(d_loss)
            bad_ticks = 0 if finite else bad_ticks + 1
            if bad_ticks >= DIVERGENCE_TICKS:
                raise TrainingDiverged(
                    f"training diverged: non-finite losses for {bad_ticks} ticks in a row at kimg "
                    f"{cur_nimg / 1000:.1f}; the last good state in {run_dir} is intact. Try a larger --gamma, "
                    "a lower learning rate (--optim.lr_g/--optim.lr_d) or fp32 (--G.num_fp16_res=0)")

            boundary = cur_nimg // tick_nimg
            snapshot = done or (cfg.snap_ticks > 0 and cur_nimg >= next_tick_nimg
                                and boundary % cfg.snap_ticks == 0)
            next_tick_nimg = (boundary + 1) * tick_nimg
            if snapshot and finite:
                _save(ctx, cfg, run_dir, cur_nimg, cur_tick, batch_idx, sampler, G, D, G_ema, opt_G, opt_D, loss,
                      controller, augment_pipe, render_grid, log)
                if metrics_fn is not None and cfg.metrics:
                    results = metrics_fn(checkpoint.snapshot_path(run_dir, cur_nimg), G_ema)
                    if ctx.is_main and results:
                        log("metrics: " + "  ".join(f"{k} {v:.4g}" for k, v in results.items()))
                        if tb is not None:
                            for k, v in results.items():
                                tb.add_scalar(f"Metrics/{k}", v, global_step=int(cur_nimg / 1000))
            tick_start_time, tick_start_nimg = time.time(), cur_nimg
            if done:
                break
    finally:
        stop.restore()
        unsubscribe()
        collector.close()
        if bar is not None:
            bar.close()
        if tb is not None:
            tb.close()
    summary.update(kimg=cur_nimg / 1000, ticks=cur_tick, trained_kimg=(cur_nimg - start_nimg) / 1000,
                   snapshot=str(checkpoint.snapshot_path(run_dir, cur_nimg)),
                   minutes=(time.time() - t_start) / 60)
    if summary["stopped_by"] == "time":
        log(f"Stopped after {summary['minutes']:.1f} minutes (time limit) at kimg {cur_nimg / 1000:.1f}; rerun "
            "the same command with a larger --kimg or --max-minutes to continue.")
    elif summary["stopped_by"] not in ("kimg", "time"):
        log(f"Stopped by {summary['stopped_by']} at kimg {cur_nimg / 1000:.1f}; state saved. Rerun the same "
            "command to resume.")
    else:
        log(f"Done: {cur_nimg / 1000:.1f} kimg. Final snapshot: {summary['snapshot']}")
    log.close()
    return summary


def _truncate_stats(path: Path, cur_nimg: int) -> None:
    """Drop stats lines written after the state we resume from (a kill can leave some)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["Progress/kimg"] * 1000 <= cur_nimg + 1e-6:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(k + "\n" for k in keep))
    os.replace(tmp, path)


def _save(ctx, cfg, run_dir, cur_nimg, cur_tick, batch_idx, sampler, G, D, G_ema, opt_G, opt_D, loss, controller,
          augment_pipe, render_grid, log):
    if ctx.is_main:
        p = float(augment_pipe.p) if augment_pipe is not None else 0.0
        snap = checkpoint.snapshot_path(run_dir, cur_nimg)
        save_networks(snap, G=G, D=D, G_ema=G_ema, config=cfg, extra_tensors={"augment_p": torch.tensor(p)},
                      metadata={"kimg": cur_nimg / 1000, "cur_nimg": cur_nimg})
        render_grid(run_dir / f"fakes{cur_nimg // 1000:06d}.png")
        checkpoint.save_training_state(
            checkpoint.state_path(run_dir, cur_nimg), G=G, D=D, G_ema=G_ema, opt_G=opt_G, opt_D=opt_D,
            pl_mean=loss.pl_mean, config=cfg,
            progress={"cur_nimg": cur_nimg, "cur_tick": cur_tick, "batch_idx": batch_idx},
            augment=controller.state_dict() if controller is not None else {},
            sampler_position=sampler.position)
        _write_report(run_dir, log)
    barrier(ctx)


def _write_report(run_dir: Path, log) -> None:
    """report.png/html at every snapshot, when matplotlib is installed (never fails the run)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    from adagan.report import write_report

    try:
        write_report(run_dir)
    except Exception as e:  # a plotting problem must not stop training
        log(f"(report not written: {e})")


def _load_transfer_weights(path: Path, G, D, G_ema, log) -> None:
    from adagan.io import load_networks, read_metadata

    present = read_metadata(path).get("networks", [])
    nets = load_networks(path, tuple(n for n in ("G", "D", "G_ema") if n in present))
    for name, target in (("G", G), ("D", D), ("G_ema", G_ema)):
        src = nets.get(name) or (nets.get("G_ema") if name == "G" else nets.get("G") if name == "G_ema" else None)
        if src is None:
            log(f"--resume: {path} has no {name}; it starts from scratch")
            continue
        mine, theirs = target.state_dict(), src.state_dict()
        bad = [k for k in mine if k not in theirs or theirs[k].shape != mine[k].shape]
        if bad:
            raise AdaganError(f"--resume {path}: its {name} does not fit this run ({len(bad)} tensors differ, e.g. "
                              f"{bad[0]}); use a network of the same resolution, channels, labels and preset")
        target.load_state_dict(theirs, strict=False)
    log(f"Initialised G, D and G_ema from {path}")


def _grid_reals(dataset, gw, gh, c_dim) -> torch.Tensor:
    n = min(gw * gh, len(dataset))
    if not c_dim:
        rng = np.random.RandomState(0)
        idx = rng.permutation(len(dataset))[:n].tolist()
        return dataset.get_batch(idx)[0]
    # Label-sorted rows: row r shows class r % c_dim.
    labels = dataset.get_batch(list(range(len(dataset))))[1].argmax(1) if len(dataset) <= 50000 else None
    idx = []
    for row in range(gh):
        cls = row % c_dim
        cands = (labels == cls).nonzero().flatten().tolist() if labels is not None else list(range(len(dataset)))
        cands = cands or list(range(len(dataset)))
        idx += [cands[i % len(cands)] for i in range(gw)]
    return dataset.get_batch(idx)[0]


def _grid_labels(dataset, gw, gh, c_dim) -> torch.Tensor:
    rows = torch.arange(gh).repeat_interleave(gw) % c_dim
    return torch.nn.functional.one_hot(rows, c_dim).float()


def _progress_bar(enabled, start, total):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start, unit="img", unit_scale=True, leave=False, dynamic_ncols=True)


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    try:
        return SummaryWriter(str(run_dir))
    except Exception:  # tensorboard installed but broken: training goes on without it
        return None
