"""One process's training step (Karras et al. 2020; StyleGAN2 App. B): what it is built from and one iteration.

`build_trainer` makes the networks, the augment pipe and its controller, the phases and their optimizers, the
loss and the data sampler, all held by one TrainState (training/state.py); the `Trainer` works on that state
and keeps only what an iteration needs besides it. `run_iteration` runs one iteration: `batch` real images
(split over processes, then into rounds of `batch_gpu` with gradients averaged) through the phases Gmain,
Greg (every pl_interval), Dmain, Dreg (every r1_interval), or Gboth / Dboth every iteration when a
regularization interval is None or 0 (`build_phases`). Each generated image gets the label of a random
dataset image. All randomness of iteration k is drawn after seeding from (seed, rank, k), so a resumed run
repeats the uninterrupted one exactly. `end_tick` gathers a tick's statistics over the processes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from adagan.augment import build_augment
from adagan.config import LossConfig, OptimConfig, TrainConfig
from adagan.data import InfiniteSampler
from adagan.errors import ConfigError
from adagan.networks import Discriminator, Generator
from adagan.ops.image import to_float
from adagan.training import stats
from adagan.training.distributed import Context, all_reduce_sum, average_gradients, broadcast_module
from adagan.training.loss import StyleGAN2Loss
from adagan.training.state import TrainState

# Statistics summed over ranks each tick (the same list on every rank).
REDUCED_STATS = [
    "Loss/G/loss", "Loss/G/reg", "Loss/D/loss", "Loss/D/reg", "Loss/scores/real", "Loss/scores/fake",
    "Loss/signs/real", "Loss/signs/fake", "Loss/r1_penalty", "Loss/pl_penalty",
    "Loss/lecam/penalty", "Loss/lecam/ema_real", "Loss/lecam/ema_fake",
]


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


# The generator's exponential moving average G_ema (Karras et al. 2020, appendix D; StyleGAN2 App. B): half-life
# `ema_kimg` thousand images; with a ramp-up ratio the half-life is at most cur_nimg * ramp, so early,
# fast-changing weights are not averaged over images that were never shown. Buffers (w_avg, the const noise)
# are copied as they are.

def ema_beta(cur_nimg: int, batch: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """The decay for one iteration of `batch` images: 0.5 ** (batch / half-life in images)."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    """G_ema <- G + beta * (G_ema - G) for parameters; buffers copied from G."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b)


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


class PhaseTimer:
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


@dataclass
class Trainer:
    """One process's training: the TrainState it works on and what the phases of an iteration use besides.

    The networks, the loss and the ADA controller are the state's (`t.G` is `t.state.G`): one object each.
    """

    config: TrainConfig
    ctx: Context
    dataset: object  # adagan.data.ImageDataset
    state: TrainState
    augment_pipe: torch.nn.Module | None
    phases: list[Phase]
    batch_gpu: int  # images per round
    rounds: int  # rounds per iteration on this process (gradients accumulate over them)
    frozen: set[int] = field(default_factory=set)  # ids of the Freeze-D parameters
    labels: torch.Tensor | None = None  # every dataset image's label, for the fakes' labels
    timer: PhaseTimer | None = None
    reduce: Callable[[torch.Tensor], None] | None = None  # in-place sum over ranks (None alone)
    close: Callable[[], None] = lambda: None

    def __post_init__(self):
        self.samples = iter(self.state.sampler)

    G = property(lambda self: self.state.G)
    D = property(lambda self: self.state.D)
    G_ema = property(lambda self: self.state.G_ema)
    loss = property(lambda self: self.state.loss)
    controller = property(lambda self: self.state.controller)


def build_trainer(config: TrainConfig, ctx: Context, dataset) -> Trainer:
    """Everything one process trains with, freshly initialised from config.seed (the same on every rank)."""
    device = ctx.device
    torch.backends.cuda.matmul.allow_tf32 = config.allow_tf32  # off unless asked (official --allow-tf32)
    torch.backends.cudnn.allow_tf32 = config.allow_tf32
    torch.backends.cudnn.benchmark = device.type == "cuda" and config.cudnn_benchmark
    torch.manual_seed(config.seed)
    G = Generator(config.G).train().requires_grad_(False).to(device)
    D = Discriminator(config.D).train().requires_grad_(False).to(device)
    if config.channels_last and device.type == "cuda":
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval()
    phases = build_phases(G, D, config.loss, config.optim)
    batch_gpu = min(config.batch_gpu, config.batch // ctx.world_size)
    frozen = frozen_d_params(D, config.freezed)
    labels = dataset_labels(dataset).to(device) if config.G.c_dim else None
    augment_pipe, controller = build_augment(config.augment, config.batch, device)
    autocast_dtype = torch.bfloat16 if (config.amp_bf16 and device.type == "cuda") else None
    reduce = all_reduce_sum(ctx)
    loss = StyleGAN2Loss(G, D, augment_pipe, config.loss, autocast_dtype=autocast_dtype, all_reduce=reduce)
    sampler = InfiniteSampler(len(dataset), rank=ctx.rank, num_replicas=ctx.world_size, seed=config.seed)
    state = TrainState(G=G, D=D, G_ema=G_ema, opt_G=phases[0].opt, opt_D=phases[-1].opt, loss=loss, sampler=sampler,
                       controller=controller)
    for net in (G, D):  # every rank starts from rank 0's weights; G_ema from G
        broadcast_module(ctx, net)
    G_ema.load_state_dict(G.state_dict())
    unsubscribe = stats.subscribe("Loss/signs/real", controller.accumulate) if controller else (lambda: None)
    return Trainer(config, ctx, dataset, state, augment_pipe, phases, batch_gpu, config.batch // ctx.world_size //
                   batch_gpu, frozen=frozen, labels=labels, timer=PhaseTimer(device), reduce=reduce, close=unsubscribe)


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


def end_tick(t: Trainer, collector: stats.Collector, clock) -> tuple[dict, float]:
    """Count the tick and gather its statistics over ranks; returns (stats.jsonl record, sec/kimg).
    clock: the run's schedule.TickClock."""
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
    p = t.controller.p if t.controller is not None else 0.0  # ADA's p: the controller's, as snapshots save it
    record = {"Progress/tick": prog.cur_tick, "Progress/kimg": prog.cur_nimg / 1000, "Progress/augment": p,
              "Progress/r_t": r_t, "Progress/time_s": round(now - clock.t_start, 2), **means}
    return record, sec_per_kimg


def peak_ram_gb() -> float:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    except (ImportError, AttributeError):
        return float("nan")
