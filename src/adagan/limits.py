"""The valid values of every setting and option, and every check of them: one table, checked in one place
(`check_config`, `check_network`, `check_options`, `check_training`); docs/limits.md lists them.

Each rule shared by several commands is written once here and used by all: the training resolution
(`check_resolution`: the presets, the training check, the dataset tool and the loader), `gpus >= 1`
(`check_gpus`) and a batch that splits evenly over the processes (`check_batch_split`).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass

from adagan.config import (
    ARCHITECTURES,
    AUGMENT_MODES,
    AUGPIPES,
    PRESET_NAMES,
    DiscriminatorConfig,
    GeneratorConfig,
    TrainConfig,
    field_types,
    strip_optional,
)
from adagan.errors import ConfigError

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


# The one rule for a training resolution (the synthesis network starts at 4x4 and doubles; 16..1024 is what
# the presets and the dataset tool support).
TRAIN_RESOLUTION = _int(16, 1024, pow2=True)
MAX_DATASET_RESOLUTION = 8192  # what a dataset may hold at all (the loader's bound on a dataset.json)


def check_choice(what: str, value, choices) -> None:
    """ConfigError naming the valid choices unless value is one of them."""
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def check_resolution(resolution) -> None:
    """ConfigError unless `resolution` is one training supports (TRAIN_RESOLUTION)."""
    if not TRAIN_RESOLUTION.ok(resolution):
        raise ConfigError(f"resolution must be a power of two from 16 to 1024, got {resolution!r}; "
                          "resize the dataset with `adagan dataset --resolution N`")


def check_gpus(gpus: int) -> None:
    if not isinstance(gpus, int) or gpus < 1:
        raise ConfigError(f"--gpus must be at least 1, got {gpus!r}")


def check_batch_split(batch: int, gpus: int) -> None:
    """ConfigError unless the total batch splits evenly over the processes (at least one image each)."""
    if batch % gpus or batch < gpus:
        raise ConfigError(f"--batch {batch} must be a positive multiple of --gpus {gpus}")


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
    "cfg": PRESET_NAMES,
}
# The `adagan train` flag of a field, named in its error message.
FLAGS = {"tick_kimg": "--tick", "snap_ticks": "--snap", "loss.r1_gamma": "--gamma", "loss.lecam": "--lecam",
         "augment.p": "--p",
         "augment.target": "--target", "augment.mode": "--aug", "augment.augpipe": "--augpipe",
         "max_minutes": "--max-minutes", "batch_gpu": "--batch-gpu", "kimg": "--kimg", "batch": "--batch",
         "gpus": "--gpus", "freezed": "--freezed", "seed": "--seed", "subset": "--subset", "cfg": "--cfg"}


def _check_fields(obj, prefix: str = "") -> None:
    """Type, range and choice of every field of a config dataclass (sections recursively)."""
    hints = field_types(type(obj))
    for f in dataclasses.fields(obj):
        key, value = prefix + f.name, getattr(obj, f.name)
        tp, optional = strip_optional(hints[f.name])
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
    check_batch_split(config.batch, config.gpus)
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
    "dataset": {"resolution": TRAIN_RESOLUTION, "workers": _int(1, 64), "max_images": _int(1, 10**9),
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



def check_training(config: TrainConfig, dataset) -> None:
    """ConfigError unless `config` can train on `dataset` (its shape: resolution, num_channels, c_dim, len)."""
    check_config(config)
    per_rank = config.batch // config.gpus
    if per_rank % config.batch_gpu:
        raise ConfigError(f"batch_gpu {config.batch_gpu} must divide the per-process batch {per_rank}")
    check_resolution(config.G.img_resolution)
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
