"""Every setting as a frozen dataclass, plus the preset table (paper App. D; docs/training.md).

No torch import here: the config is plain data that round-trips through JSON.
`resolve(cfg_name, resolution, ...)` turns a preset name into a full
`TrainConfig`; `apply_overrides` applies dotted `section.field=value` strings
(the CLI's `--loss.r1_gamma=0.5`) on top, so the CLI only overrides what was given.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from adagan.errors import ConfigError


@dataclass(frozen=True)
class GeneratorConfig:
    z_dim: int = 512  # input latent size
    w_dim: int = 512  # intermediate latent size
    c_dim: int = 0  # number of classes (0 = unconditional)
    img_resolution: int = 256  # square, power of two, 4 < res <= 1024 (16..1024 supported)
    img_channels: int = 3  # 1, 3 or 4
    channel_base: int = 32768  # channels at res r = min(channel_base // r, channel_max)
    channel_max: int = 512
    map_layers: int = 8  # depth of the mapping network
    map_lr_mul: float = 0.01  # learning-rate multiplier of the mapping network
    w_avg_beta: float = 0.995  # decay of the tracked mean of w (truncation centre)
    num_fp16_res: int = 4  # top resolutions run in fp16 on CUDA (never 4x4, never on CPU)
    conv_clamp: float | None = 256  # clamp activations to +-conv_clamp (None = off)
    # Synthesis network (StyleGAN2 Figure 7): "skip" (config F, every preset), "orig" or "resnet".
    # Files saved before this field existed load as "skip", the only architecture they could hold.
    architecture: str = "skip"


@dataclass(frozen=True)
class DiscriminatorConfig:
    c_dim: int = 0
    img_resolution: int = 256
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    architecture: str = "resnet"  # StyleGAN2 Figure 7: "resnet" (config F), "orig" (cifar preset) or "skip"
    mbstd_group_size: int = 4  # minibatch-std group size (min with the batch)
    mbstd_num_channels: int = 1
    cmap_dim: int = 512  # projection-discriminator embedding size (conditional only)
    map_layers: int = 8  # depth of the label mapping (conditional only)
    map_lr_mul: float = 0.01
    num_fp16_res: int = 4
    conv_clamp: float | None = 256


@dataclass(frozen=True)
class LossConfig:
    r1_gamma: float = 10.0  # R1 weight; penalty = gamma/2 * ||grad||^2 (0 = no R1)
    # Lazy regularization (StyleGAN2 App. B): the regularizer runs every N steps with gain N, and Adam gets
    # lr * N/(N+1), betas ** (N/(N+1)) even when the regularizer's weight is 0. None or 0 = not lazy: every
    # step, in one phase with the main loss (Gboth / Dboth), Adam unscaled (the official reg_interval=None).
    r1_interval: int | None = 16
    pl_weight: float = 2.0  # path-length weight (0 = no path-length regularization)
    pl_interval: int | None = 4  # as r1_interval, for G's path length
    pl_decay: float = 0.01  # decay of the path-length running mean
    pl_batch_shrink: int = 2  # path length on batch // shrink
    style_mixing_prob: float = 0.9
    # LeCam regularization (Tseng et al., CVPR 2021): D's main loss + lecam * R_LC, R_LC = E[relu(D(x) - ema_fake)^2]
    # + E[relu(ema_real - D(G(z)))^2] with zero-debiased EMAs of D's batch-mean scores (training/loss.py). 0 = off.
    lecam: float = 0.0
    lecam_decay: float = 0.99  # decay of those EMAs (the reference code's)


@dataclass(frozen=True)
class OptimConfig:
    lr_g: float = 0.002
    lr_d: float = 0.002
    beta1: float = 0.0
    beta2: float = 0.99
    eps: float = 1e-8


# Augmentation choices (paper §2.3-3, appendix B). Each name is defined once, here; the CLI offers these
# and the code that implements them (adagan.augment) imports them.
AUGMENT_MODES = ("ada", "fixed", "noaug")  # adaptive p; p as given; no augmentation
# --augpipe presets: letters name the transform groups of augment/pipeline.py (GROUPS): (b)lit, (g)eom,
# (c)olor, (f)ilter, (n)oise, (c)utout.
AUGPIPES: dict[str, tuple[str, ...]] = {
    "blit": ("blit",), "geom": ("geom",), "color": ("color",), "filter": ("filter",), "noise": ("noise",),
    "cutout": ("cutout",),
    "bg": ("blit", "geom"),
    "bgc": ("blit", "geom", "color"),
    "bgcf": ("blit", "geom", "color", "filter"),
    "bgcfn": ("blit", "geom", "color", "filter", "noise"),
    "bgcfnc": ("blit", "geom", "color", "filter", "noise", "cutout"),
    # DiffAugment (Zhao et al. 2020; augment/diffaug.py), its own pipe: the paper's policy for StyleGAN2, in the
    # groups of that pipe (its colour and cutout are not ADA's).
    "diffaug": ("color", "translation", "cutout"),
}
DIFFAUG_AUGPIPES = ("diffaug",)  # the AUGPIPES built as a DiffAugmentPipe; the others are ADA presets
# --aug names that stand for a mode, p and augpipe together; the config stores the long form, so both spellings
# resolve to the same config and run. `--aug diffaug` is the paper's DiffAugment: its policy on every image at p = 1.
AUGMENT_SHORTCUTS: dict[str, dict[str, Any]] = {"diffaug": {"mode": "fixed", "p": 1.0, "augpipe": "diffaug"}}


# Network architectures of StyleGAN2's Figure 7 (G: "skip" in config F; D: "resnet" in config F).
ARCHITECTURES = ("skip", "orig", "resnet")


def check_choice(what: str, value, choices) -> None:
    """ConfigError naming the valid choices unless value is one of them."""
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


@dataclass(frozen=True)
class AugmentConfig:
    mode: str = "ada"  # one of AUGMENT_MODES: "ada" (adaptive p), "fixed" (p as given) or "noaug"
    p: float = 0.0  # initial p for ada, the p for fixed
    target: float = 0.6  # r_t target
    interval: int = 4  # update p every N iterations
    ada_kimg: float = 500.0  # p can move 0 -> 1 in this many kimg of reals
    augpipe: str = "bgc"  # one of AUGPIPES


@dataclass(frozen=True)
class TrainConfig:
    cfg: str = "auto"  # the preset this was resolved from (`preset`; official and CLI name: --cfg)
    G: GeneratorConfig = field(default_factory=GeneratorConfig)
    D: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    gpus: int = 1
    batch: int = 32  # total batch over all processes
    batch_gpu: int = 32  # per-process batch; gradients accumulate to `batch`
    ema_kimg: float = 10.0  # G_ema half-life in kimg
    ema_rampup: float | None = None  # ema ramp-up ratio (None = off)
    kimg: float = 25000.0  # training length in thousands of real images
    tick_kimg: float = 4.0  # progress/stats interval
    snap_ticks: int = 50  # snapshot every N ticks
    freezed: int = 0  # Freeze-D: number of top D layers not trained
    seed: int = 0
    # Data (filled by the training command).
    data: str = ""
    mirror: bool = False
    cond: bool = False
    subset: int | None = None
    metrics: tuple[str, ...] = ()
    # Wall-clock cap in minutes per invocation (None = no cap); used by the CPU demo.
    max_minutes: float | None = None
    # Execution options (CUDA only; they do not change what is learned).
    amp_bf16: bool = False  # bf16 autocast around G and D
    channels_last: bool = False  # NHWC memory layout for the networks
    cudnn_benchmark: bool = True  # cuDNN autotuning (official --nobench=1 turns it off)
    allow_tf32: bool = False  # TF32 matmuls and convolutions on Ampere+ (official --allow-tf32)

    @property
    def preset(self) -> str:
        """The preset name (stored as `cfg`, the official --cfg, so saved files keep their keys)."""
        return self.cfg


# --------------------------------------------------------------------------
# Presets (paper App. D; official train.py). `ref_gpus` is the GPU count the batch was tuned for.

@dataclass(frozen=True)
class PresetSpec:
    ref_gpus: int
    kimg: float
    batch: int
    mbstd: int
    fmaps: float
    lr: float
    gamma: float
    ema_kimg: float
    ema_rampup: float | None
    map_layers: int
    # Extras for presets that deviate from the paper networks.
    channel_max: int = 512
    z_dim: int = 512
    w_dim: int = 512
    pl_weight: float = 2.0
    style_mixing_prob: float = 0.9
    d_architecture: str = "resnet"
    channel_base: int | None = None  # overrides the fmaps formula when set
    max_minutes: float | None = None
    num_fp16_res: int = 4
    conv_clamp: float | None = 256
    tick_kimg: float = 4.0
    snap_ticks: int = 50
    ada_kimg: float = 500.0  # ADA controller speed: p can move 0 -> 1 in this many kimg (paper §2.3)


PRESETS: dict[str, PresetSpec | None] = {
    # "auto" depends on resolution and GPU count: see _auto_spec.
    "auto": None,
    "stylegan2": PresetSpec(8, 25000, 32, 4, 1, 0.002, 10, 10, None, 8),
    "paper256": PresetSpec(8, 25000, 64, 8, 0.5, 0.0025, 1, 20, None, 8),
    "paper512": PresetSpec(8, 25000, 64, 8, 1, 0.0025, 0.5, 20, None, 8),
    "paper1024": PresetSpec(8, 25000, 32, 4, 1, 0.002, 2, 10, None, 8),
    "cifar": PresetSpec(2, 100000, 64, 32, 1, 0.0025, 0.01, 500, 0.05, 2,
                        pl_weight=0.0, style_mixing_prob=0.0, d_architecture="orig"),
    # Small fp32 networks a 2-core CPU trains in minutes at 32x32 (G 0.7M / D 0.9M params): 32 channels
    # at 32x32, 128 below. Like `cifar`, no path-length regularization and no style mixing: on this
    # budget both cost time and, measured at equal wall time, gave less recognisable samples.
    # ada_kimg 20 instead of the paper's 500: runs here last 100-500 kimg, not 25,000, and with 500 the
    # controller had moved p by 0.01 after 8 kimg while r_t was already 0.87 (docs/augment.md).
    "cpu": PresetSpec(1, 1000, 32, 4, 1, 0.0025, 0.05, 2.5, 0.05, 2,
                      channel_max=128, z_dim=128, w_dim=128, channel_base=1024, max_minutes=30,
                      pl_weight=0.0, style_mixing_prob=0.0,
                      num_fp16_res=0, conv_clamp=None, tick_kimg=1.0, snap_ticks=10, ada_kimg=20),
}


def _auto_spec(resolution: int, gpus: int) -> PresetSpec:
    res = resolution
    batch = max(min(gpus * min(4096 // res, 32), 64), gpus)
    return PresetSpec(
        ref_gpus=gpus,
        kimg=25000,
        batch=batch,
        mbstd=min(batch // gpus, 4),
        fmaps=1 if res >= 512 else 0.5,
        lr=0.002 if res >= 1024 else 0.0025,
        gamma=0.0002 * (res**2) / batch,
        ema_kimg=batch * 10 / 32,
        ema_rampup=0.05,
        map_layers=2,
    )


def _check_resolution(resolution: int) -> None:
    if not isinstance(resolution, int) or resolution < 16 or resolution > 1024 or resolution & (resolution - 1):
        raise ConfigError(
            f"resolution must be a power of two from 16 to 1024, got {resolution!r}; "
            "resize the dataset with `adagan dataset --resolution N`"
        )


def resolve(
    preset: str,
    resolution: int,
    img_channels: int = 3,
    c_dim: int = 0,
    gpus: int = 1,
) -> TrainConfig:
    """The full training config of `preset` for this data shape and GPU count."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset --cfg {preset!r}; choose one of: {', '.join(PRESETS)}")
    _check_resolution(resolution)
    if img_channels not in (1, 3, 4):
        raise ConfigError(f"img_channels must be 1, 3 or 4, got {img_channels}")
    if gpus < 1:
        raise ConfigError(f"--gpus must be at least 1, got {gpus}")
    spec = PRESETS[preset] or _auto_spec(resolution, gpus)
    # Per-GPU batch as in the reference setup; fewer GPUs accumulate gradients.
    batch_gpu = max(spec.batch // max(spec.ref_gpus, gpus), 1)
    channel_base = spec.channel_base or int(spec.fmaps * 32768)
    G = GeneratorConfig(
        z_dim=spec.z_dim, w_dim=spec.w_dim, c_dim=c_dim, img_resolution=resolution,
        img_channels=img_channels, channel_base=channel_base, channel_max=spec.channel_max,
        map_layers=spec.map_layers, num_fp16_res=spec.num_fp16_res, conv_clamp=spec.conv_clamp,
    )
    D = DiscriminatorConfig(
        c_dim=c_dim, img_resolution=resolution, img_channels=img_channels,
        channel_base=channel_base, channel_max=spec.channel_max, architecture=spec.d_architecture,
        mbstd_group_size=spec.mbstd, num_fp16_res=spec.num_fp16_res, conv_clamp=spec.conv_clamp,
    )
    return TrainConfig(
        cfg=preset, G=G, D=D,
        loss=LossConfig(r1_gamma=spec.gamma, pl_weight=spec.pl_weight,
                        style_mixing_prob=spec.style_mixing_prob),
        optim=OptimConfig(lr_g=spec.lr, lr_d=spec.lr),
        augment=AugmentConfig(ada_kimg=spec.ada_kimg),
        gpus=gpus, batch=spec.batch, batch_gpu=batch_gpu,
        ema_kimg=spec.ema_kimg, ema_rampup=spec.ema_rampup, kimg=spec.kimg,
        max_minutes=spec.max_minutes, cond=c_dim > 0, tick_kimg=spec.tick_kimg, snap_ticks=spec.snap_ticks,
    )


# --------------------------------------------------------------------------
# `adagan train`'s options -> a TrainConfig (the CLI and adagan.train both come here).

# The default demo: limited data (170 images), where ADA matters (docs/results.md).
DEFAULT_DATA = "builtin:twemoji/smileys"
# ... fine-tuned from the built-in pretrained network when neither --data nor --resume is given (training/run.py).
DEFAULT_RESUME = "builtin:twemoji32"
# Official train.py 313-315: transfer learning (--resume) lets p adapt 5x faster and drops the EMA ramp-up.
RESUME_ADA_KIMG = 100.0


def for_training(dataset, *, preset: str | None = None, device: str = "cpu", gpus: int = 1, data: str = "",
                 batch: int | None = None, batch_gpu: int | None = None, gamma: float | None = None,
                 kimg: float | None = None, max_minutes: float | None = None, aug: str = "ada",
                 p: float | None = None, target: float | None = None, augpipe: str | None = None,
                 mirror: bool = False, cond: bool = False, subset: int | None = None, resume: str | None = None,
                 freezed: int | None = None, tick: float | None = None, snap: int | None = None,
                 metrics: tuple[str, ...] | None = None, seed: int | None = None,
                 lecam: float | None = None,
                 overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """The TrainConfig of `adagan train` with these options, checked against the data.

    The preset (None: `cpu` on a CPU, `auto` elsewhere) fills every setting; each option that is not
    None replaces the preset's value (the flags of `adagan train`, named as there: `gamma` is
    loss.r1_gamma, `tick` tick_kimg, `snap` snap_ticks, `aug`/`p`/`target`/`augpipe` the augment
    section); `resume` applies the transfer-learning policy; `overrides` ("section.field=value", the
    CLI's `--loss.r1_gamma=0.5`) come last and win. `dataset` is only read for its shape:
    `resolution`, `num_channels`, `c_dim`, `len()` and `name` (an adagan.data.ImageDataset will do).
    `lecam` is loss.lecam; `aug` may also be one of AUGMENT_SHORTCUTS (a mode, p and augpipe together).
    """
    if gpus < 1:
        raise ConfigError("--gpus must be at least 1")
    if cond and dataset.c_dim == 0:
        raise ConfigError(f"--cond needs labels, but {dataset.name} has none; create the dataset with "
                          "`adagan dataset --labels subfolders` (or drop --cond)")
    preset = preset or ("cpu" if device == "cpu" else "auto")
    config = resolve(preset, dataset.resolution, img_channels=dataset.num_channels, c_dim=dataset.c_dim, gpus=gpus)
    config = _apply_flags(config, gpus=gpus, data=data, mirror=mirror, cond=cond, subset=subset, batch=batch,
                          batch_gpu=batch_gpu, kimg=kimg, max_minutes=max_minutes, freezed=freezed,
                          tick_kimg=tick, snap_ticks=snap, seed=seed, metrics=metrics)
    if gamma is not None:
        config = dataclasses.replace(config, loss=dataclasses.replace(config.loss, r1_gamma=gamma))
    if lecam is not None:
        config = dataclasses.replace(config, loss=dataclasses.replace(config.loss, lecam=lecam))
    config = _apply_augment(config, aug=aug, p=p, target=target, augpipe=augpipe)
    if resume is not None:
        # Transfer learning: p adapts faster (or at the preset's own speed if that is faster already) and
        # G_ema averages over ema_kimg from the first image (the pretrained G is already good).
        config = dataclasses.replace(config, ema_rampup=None, augment=dataclasses.replace(
            config.augment, ada_kimg=min(config.augment.ada_kimg, RESUME_ADA_KIMG)))
    config = apply_overrides(config, list(overrides))
    check_training(config, dataset)
    return config


def _apply_flags(config: TrainConfig, *, gpus: int, batch: int | None, batch_gpu: int | None, kimg: float | None,
                 max_minutes: float | None, **fields) -> TrainConfig:
    """The top-level flags; None leaves the preset's value. --kimg lifts the preset's time limit."""
    changes = {k: v for k, v in fields.items() if v is not None or k == "subset"}
    if batch is not None:
        if batch < gpus or batch % gpus:
            raise ConfigError(f"--batch {batch} must be a positive multiple of --gpus {gpus}")
        changes.update(batch=batch, batch_gpu=min(config.batch_gpu, batch // gpus))
    if batch_gpu is not None:
        changes["batch_gpu"] = batch_gpu
    if kimg is not None:
        changes.update(kimg=kimg, max_minutes=None)
    if max_minutes is not None:
        changes["max_minutes"] = None if max_minutes == 0 else max_minutes  # 0: no limit; < 0 is refused later
    return dataclasses.replace(config, **changes)


def _apply_augment(config: TrainConfig, *, aug: str, p: float | None, target: float | None,
                   augpipe: str | None) -> TrainConfig:
    if aug in AUGMENT_SHORTCUTS:
        long = AUGMENT_SHORTCUTS[aug]
        if p not in (None, long["p"]) or augpipe not in (None, long["augpipe"]):
            raise ConfigError(f"--aug {aug} means --aug {long['mode']} --p {long['p']:g} --augpipe {long['augpipe']}; "
                              "give those flags instead to change p or the pipe")
        aug, p, augpipe = long["mode"], long["p"], long["augpipe"]
    # As the official train.py (its setup_training_loop_kwargs): flags the mode would ignore are refused.
    if p is not None and aug != "fixed":
        raise ConfigError(f"--p can only be given with --aug fixed, not --aug {aug} (ADA's starting p: "
                          "--augment.p=P)")
    if augpipe is not None and aug == "noaug":
        raise ConfigError("--augpipe cannot be given with --aug noaug (noaug augments nothing)")
    if target is not None and aug != "ada":
        raise ConfigError(f"--target can only be given with --aug ada, not --aug {aug}")
    changes: dict[str, Any] = {"mode": aug}
    if p is not None:
        changes["p"] = p
    elif aug == "fixed":
        raise ConfigError("--aug fixed needs --p (e.g. --p 0.2)")
    if target is not None:
        changes["target"] = target
    if augpipe is not None:
        changes["augpipe"] = augpipe
    return dataclasses.replace(config, augment=dataclasses.replace(config.augment, **changes))


def check_training(config: TrainConfig, dataset) -> None:
    """ConfigError unless `config` can train on `dataset` (its shape, as in for_training)."""
    check_config(config)
    per_rank = config.batch // config.gpus
    if config.batch % config.gpus:
        raise ConfigError(f"batch {config.batch} is not divisible by gpus {config.gpus}")
    if per_rank % config.batch_gpu:
        raise ConfigError(f"batch_gpu {config.batch_gpu} must divide the per-process batch {per_rank}")
    _check_resolution(config.G.img_resolution)
    if config.G.img_resolution != dataset.resolution or config.G.img_channels != dataset.num_channels:
        raise ConfigError("G.img_resolution/img_channels must match the dataset "
                          f"({dataset.resolution}px, {dataset.num_channels} channels)")
    if (config.D.img_resolution, config.D.img_channels) != (config.G.img_resolution, config.G.img_channels):
        raise ConfigError("D.img_resolution/img_channels must match G's "
                          f"({config.G.img_resolution}px, {config.G.img_channels} channels)")
    if config.G.c_dim != dataset.c_dim or config.D.c_dim != dataset.c_dim:
        raise ConfigError(f"G.c_dim and D.c_dim must match the dataset's {dataset.c_dim} classes")
    if len(dataset) < per_rank:
        raise ConfigError(f"the dataset has {len(dataset)} images, fewer than one batch ({config.batch}); add "
                          "images or lower --batch")


# --------------------------------------------------------------------------
# The valid values of every setting: one table, checked in one place (`check_config`, `check_network`,
# `check_options`); docs/limits.md lists them.

MAX_CLASSES = 1000  # labels: class indices 0..999 (ImageNet-sized), or label vectors of at most 1000 values


@dataclass(frozen=True)
class Range:
    """The numbers a setting accepts: lo..hi, ends included unless open; integers (`integer`), powers of two
    (`pow2`); None allowed when `none` says what it means."""

    lo: float
    hi: float
    integer: bool = False
    lo_open: bool = False
    pow2: bool = False
    none: str | None = None

    def describe(self) -> str:
        what = "a power of two" if self.pow2 else "an integer" if self.integer else "a number"
        lo = f"{self.lo:g}" if not self.integer else f"{int(self.lo)}"
        hi = f"{self.hi:g}" if not self.integer else f"{int(self.hi)}"
        text = f"{what} in {'(' if self.lo_open else '['}{lo}, {hi}]"
        return text + (f" or none ({self.none})" if self.none else "")

    def ok(self, value) -> bool:
        if value is None:
            return self.none is not None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value) or value < self.lo or value > self.hi or (self.lo_open and value == self.lo):
            return False
        return not self.pow2 or (value > 0 and int(value) & (int(value) - 1) == 0)

    def check(self, name: str, value) -> None:
        if not self.ok(value):
            raise ConfigError(f"{name} must be {self.describe()}, got {value!r}")


def _int(lo, hi, **kw) -> Range:
    return Range(lo, hi, integer=True, **kw)


_NETWORK = {  # fields G and D share
    "c_dim": _int(0, MAX_CLASSES),
    "img_resolution": _int(4, 1024, pow2=True),
    "channel_base": _int(1, 2**20),
    "channel_max": _int(1, 1024),
    "map_layers": _int(1, 16),
    "map_lr_mul": Range(0, 1, lo_open=True),
    "num_fp16_res": _int(0, 10),
    "conv_clamp": Range(0, 1e5, lo_open=True, none="no clamping"),
}
LIMITS: dict[str, Range] = {
    **{f"G.{k}": v for k, v in _NETWORK.items()},
    "G.z_dim": _int(1, 2048),
    "G.w_dim": _int(1, 2048),
    "G.w_avg_beta": Range(0, 1),
    **{f"D.{k}": v for k, v in _NETWORK.items()},
    "D.mbstd_group_size": _int(1, 1024),
    "D.mbstd_num_channels": _int(0, 64),
    "D.cmap_dim": _int(1, 2048),
    "loss.r1_gamma": Range(0, 1e6),
    "loss.r1_interval": _int(0, 10**6, none="every step, not lazy"),
    "loss.pl_weight": Range(0, 1e6),
    "loss.pl_interval": _int(0, 10**6, none="every step, not lazy"),
    "loss.pl_decay": Range(0, 1),
    "loss.pl_batch_shrink": _int(1, 1024),
    "loss.style_mixing_prob": Range(0, 1),
    "loss.lecam": Range(0, 1e6),  # 0 = off
    "loss.lecam_decay": Range(0, 0.9999),
    "optim.lr_g": Range(0, 1, lo_open=True),
    "optim.lr_d": Range(0, 1, lo_open=True),
    "optim.beta1": Range(0, 0.9999),
    "optim.beta2": Range(0, 0.9999),
    "optim.eps": Range(0, 1, lo_open=True),
    "augment.p": Range(0, 1),
    "augment.target": Range(-1, 1),  # r_t = E[sign(D(real))] is in [-1, 1]; the paper uses 0.6
    "augment.interval": _int(1, 10**6),
    "augment.ada_kimg": Range(0, 1e7, lo_open=True),
    "gpus": _int(1, 1024),
    "batch": _int(1, 65536),
    "batch_gpu": _int(1, 65536),
    "ema_kimg": Range(0, 1e7, lo_open=True),
    "ema_rampup": Range(0, 100, lo_open=True, none="no ramp-up"),
    "kimg": Range(0, 1e7, lo_open=True),
    "tick_kimg": Range(0, 1e6, lo_open=True),
    "snap_ticks": _int(0, 10**9),
    "freezed": _int(0, 1000),
    "seed": _int(0, 2**32 - 1),
    "subset": _int(1, 2**31 - 1, none="all images"),
    "max_minutes": Range(0, 1e7, lo_open=True, none="no limit"),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "G.architecture": ARCHITECTURES, "D.architecture": ARCHITECTURES, "G.img_channels": (1, 3, 4),
    "D.img_channels": (1, 3, 4), "augment.mode": AUGMENT_MODES, "augment.augpipe": tuple(AUGPIPES),
    "cfg": tuple(PRESETS),
}
# The `adagan train` flag of a field, named in its error message.
FLAGS = {"tick_kimg": "--tick", "snap_ticks": "--snap", "loss.r1_gamma": "--gamma", "loss.lecam": "--lecam",
         "augment.p": "--p",
         "augment.target": "--target", "augment.mode": "--aug", "augment.augpipe": "--augpipe",
         "max_minutes": "--max-minutes", "batch_gpu": "--batch-gpu", "kimg": "--kimg", "batch": "--batch",
         "gpus": "--gpus", "freezed": "--freezed", "seed": "--seed", "subset": "--subset", "cfg": "--cfg"}


def _check_fields(obj, prefix: str = "") -> None:
    """Type, range and choice of every field of a config dataclass (sections recursively)."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        key, value = prefix + f.name, getattr(obj, f.name)
        tp, optional = _strip_optional(hints[f.name])
        name = f"{FLAGS[key]} ({key})" if key in FLAGS else key
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, tp):
                raise ConfigError(f"{key} must be a {tp.__name__} section, got {type(value).__name__}")
            _check_fields(value, key + ".")
        elif key in CHOICES:
            if type(value) is not type(CHOICES[key][0]) or value not in CHOICES[key]:
                raise ConfigError(f"{name} must be one of {', '.join(map(str, CHOICES[key]))}, got {value!r}")
        elif key in LIMITS:
            LIMITS[key].check(name, value)
        elif value is None and optional:
            continue
        elif tp is bool or tp is str:
            if not isinstance(value, tp):
                raise ConfigError(f"{name} must be {'true or false' if tp is bool else 'a string'}, got {value!r}")
        elif typing.get_origin(tp) is tuple:
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{name} must be a list of names, got {value!r}")
        elif not Range(-math.inf, math.inf).ok(value) or (tp is int and not isinstance(value, int)):
            # A numeric field without an entry in LIMITS: at least a finite number of the right type.
            raise ConfigError(f"{name} must be a finite {tp.__name__}, got {value!r}")


def d_layer_count(D: DiscriminatorConfig) -> int:
    """Layers of the discriminator (Freeze-D counts them from the top; networks.Discriminator.layer_names)."""
    blocks = [r for r in (2**i for i in range(3, int(math.log2(D.img_resolution)) + 1))]
    per_block = 2 + (D.architecture == "resnet")  # conv0, conv1 (+ skip)
    fromrgb = len(blocks) if D.architecture == "skip" else 1 if blocks else 0
    return len(blocks) * per_block + fromrgb + 3 + (D.architecture == "skip")  # epilogue: conv, fc, out


def check_network(cfg: GeneratorConfig | DiscriminatorConfig) -> None:
    """ConfigError unless every field of a G or D config is valid and the network has at least one feature
    map per layer (what from a file or from overrides must hold before anything is built)."""
    what = "G" if isinstance(cfg, GeneratorConfig) else "D"
    if not isinstance(cfg, GeneratorConfig | DiscriminatorConfig):
        raise ConfigError(f"expected a GeneratorConfig or DiscriminatorConfig, got {type(cfg).__name__}")
    _check_fields(cfg, what + ".")
    if cfg.channel_base < cfg.img_resolution:
        raise ConfigError(f"{what}.channel_base {cfg.channel_base} leaves no feature maps at {cfg.img_resolution}px "
                          f"(channels = min(channel_base // resolution, channel_max)); use at least "
                          f"{cfg.img_resolution}")
    if what == "D" and cfg.mbstd_num_channels:
        ch4 = min(cfg.channel_base // 4, cfg.channel_max)
        if ch4 % cfg.mbstd_num_channels:
            raise ConfigError(f"D.mbstd_num_channels {cfg.mbstd_num_channels} must divide the {ch4} feature maps "
                              "at 4x4")


def check_config(config: TrainConfig) -> None:
    """ConfigError unless every field of a training config is valid (LIMITS, CHOICES, types) and the
    fields agree with each other; the message names the valid range."""
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"expected a TrainConfig, got {type(config).__name__}")
    _check_fields(config)
    for net in (config.G, config.D):
        check_network(net)
    if config.batch % config.gpus or config.batch < config.gpus:
        raise ConfigError(f"--batch {config.batch} must be a positive multiple of --gpus {config.gpus}")
    if config.batch_gpu > config.batch // config.gpus:
        raise ConfigError(f"--batch-gpu {config.batch_gpu} is more than the per-process batch "
                          f"{config.batch // config.gpus}")
    layers = d_layer_count(config.D)
    if config.freezed > layers:
        raise ConfigError(f"--freezed {config.freezed}: D has {layers} layers at {config.D.img_resolution}px; "
                          f"freeze at most {layers}")


# Options of the other commands, by command and option (the same one place as the training settings).
_PSI = Range(-10, 10)
_BATCH = _int(1, 4096)
OPTIONS: dict[str, dict[str, Range]] = {
    "generate": {"trunc": _PSI, "batch": _BATCH},
    "mix": {"trunc": _PSI},
    "video": {"trunc": _PSI, "frames_per_seed": _int(1, 10**7), "fps": Range(0, 1000, lo_open=True)},
    "project": {"steps": _int(1, 10**7), "w_avg_samples": _int(1, 10**9), "seed": _int(0, 2**32 - 1)},
    "export": {"opset": _int(13, 23)},  # the opsets torch.onnx writes for these networks
    "augment-preview": {"p": Range(0, 1), "num": _int(1, 256), "rows": _int(1, 64), "seed": _int(0, 2**32 - 1)},
    "dataset": {"resolution": _int(16, 1024, pow2=True), "workers": _int(1, 64), "max_images": _int(1, 10**9),
                "max_pixels": _int(1, 2**31 - 1)},
    "metrics": {"batch": _BATCH, "subset": _int(1, 2**31 - 1)},
    "fid": {"batch": _BATCH, "num": _int(2, 10**9)},
}
# Work one command may do before it asks for --yes (docs/limits.md): images or frames made, steps taken.
YES_LIMITS = {"images": 10_000, "frames": 10_000, "steps": 10_000, "w_avg_samples": 100_000}


def check_options(command: str, **values) -> None:
    """ConfigError unless each given option (None = not given) of `command` is in its OPTIONS range."""
    for name, value in values.items():
        if value is not None:
            OPTIONS[command][name].check(f"--{name.replace('_', '-')}", value)


def check_work(what: str, amount: int, yes: bool, hint: str = "") -> None:
    """ConfigError when `amount` of `what` (a YES_LIMITS key) is past the limit and --yes was not given."""
    limit = YES_LIMITS[what]
    if amount > limit and not yes:
        raise ConfigError(f"this would make {amount:,} {what.replace('_', ' ')}, more than {limit:,}; pass --yes "
                          f"to go ahead{hint}")


# --------------------------------------------------------------------------
# JSON round trip and dotted overrides.

def to_dict(cfg: Any) -> dict:
    """A dataclass config as plain JSON-able data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def to_json(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def from_dict(cls, data: dict):
    """Build dataclass `cls` from `to_dict` output; unknown keys are an error."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    hints = _hints(cls)
    unknown = set(data) - set(hints)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")
    kwargs = {}
    for name, value in data.items():
        tp, _ = _strip_optional(hints[name])
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            value = from_dict(tp, value)
        elif typing.get_origin(tp) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def from_json(text: str, cls=TrainConfig):
    return from_dict(cls, json.loads(text))


def _parse_value(text: str, tp, key: str):
    tp, optional = _strip_optional(tp)
    if optional and text.lower() in ("none", "null"):
        return None
    try:
        if tp is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
        if tp is str:
            return text
        if typing.get_origin(tp) is tuple:
            return tuple(s for s in text.split(",") if s)
    except ValueError:
        pass
    raise ConfigError(f"cannot set {key}={text!r}: expected {getattr(tp, '__name__', tp)}")


def apply_overrides(cfg, overrides: dict[str, str] | list[str]):
    """Apply `section.field=value` overrides (strings) to a frozen config.

    `overrides` is a dict or a list of "key=value" strings. Values are parsed
    to the field's type; unknown keys raise ConfigError naming the valid ones.
    """
    if isinstance(overrides, list):
        pairs = {}
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like section.field=value")
            k, v = item.split("=", 1)
            pairs[k.lstrip("-")] = v
        overrides = pairs
    for key, text in overrides.items():
        cfg = _set_path(cfg, key.split("."), text, key)
    return cfg


def _set_path(obj, path: list[str], text: str, key: str):
    hints = _hints(type(obj))
    name = path[0]
    if name not in hints:
        valid = ", ".join(sorted(hints))
        raise ConfigError(f"unknown setting {key!r}: {name!r} is not one of {valid}")
    current = getattr(obj, name)
    if len(path) == 1:
        if dataclasses.is_dataclass(current):
            raise ConfigError(f"{key!r} is a section; set one of its fields, e.g. {key}.FIELD=VALUE")
        return dataclasses.replace(obj, **{name: _parse_value(text, hints[name], key)})
    if not dataclasses.is_dataclass(current):
        raise ConfigError(f"unknown setting {key!r}: {name!r} has no sub-fields")
    return dataclasses.replace(obj, **{name: _set_path(current, path[1:], text, key)})


def num_ws(resolution: int) -> int:
    """Number of w vectors the synthesis network consumes: 2*log2(res) - 2."""
    return 2 * int(math.log2(resolution)) - 2
