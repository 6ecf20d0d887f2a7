"""Every setting as a frozen dataclass, the names of the choices, and the JSON round trip.

No torch import here: the config is plain data that round-trips through JSON. `apply_overrides` applies
dotted `section.field=value` strings (the CLI's `--loss.r1_gamma=0.5`) on top of a config. The presets and
the training-flag policy are in presets.py (`resolve`, `for_training`), the valid values and every check
in limits.py.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from adagan.errors import ConfigError


@dataclass(frozen=True)
class GeneratorConfig:
    """The generator (mapping + synthesis network; StyleGAN2 config F unless a preset says otherwise)."""

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
    """The discriminator; its shared fields mean what GeneratorConfig's do."""

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
    """The losses and regularizers of training/loss.py (paper §2-3; StyleGAN2 App. B)."""

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
    """Adam for G and D (the official defaults; lazy regularization rescales them)."""

    lr_g: float = 0.002
    lr_d: float = 0.002
    beta1: float = 0.0  # 0: no momentum (StyleGAN2)
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
# The presets (--cfg) of presets.py, whose table is checked against this list.
PRESET_NAMES = ("auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar", "cpu")


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation (paper §2.3-3): the mode, p and its controller, the pipe."""

    mode: str = "ada"  # one of AUGMENT_MODES: "ada" (adaptive p), "fixed" (p as given) or "noaug"
    p: float = 0.0  # initial p for ada, the p for fixed
    target: float = 0.6  # r_t target
    interval: int = 4  # update p every N iterations
    ada_kimg: float = 500.0  # p can move 0 -> 1 in this many kimg of reals
    augpipe: str = "bgc"  # one of AUGPIPES


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run is: the sections, the batch, the schedule, the data, the limits."""

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


# JSON round trip and dotted overrides.

def to_dict(cfg: Any) -> dict:
    """A dataclass config as plain JSON-able data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def to_json(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)


def field_types(cls) -> dict[str, Any]:
    """The resolved type of every field of dataclass `cls`."""
    return typing.get_type_hints(cls)


def strip_optional(tp):
    """(T, True) for `T | None`, else (tp, False)."""
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
    hints = field_types(cls)
    unknown = set(data) - set(hints)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(sorted(unknown))}")
    kwargs = {}
    for name, value in data.items():
        tp, _ = strip_optional(hints[name])
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            value = from_dict(tp, value)
        elif typing.get_origin(tp) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def from_json(text: str, cls=TrainConfig):
    return from_dict(cls, json.loads(text))


def _parse_value(text: str, tp, key: str):
    tp, optional = strip_optional(tp)
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
    hints = field_types(type(obj))
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


# Names that moved to presets.py and limits.py, still importable from here (loaded on first use, so that
# config.py imports neither).
_MOVED = {**dict.fromkeys(("PRESETS", "PresetSpec", "Preset", "resolve", "for_training", "DEFAULT_DATA",
                           "RESUME_ADA_KIMG", "DEFAULT_RESUME"), "adagan.presets"),
          **dict.fromkeys(("MAX_CLASSES", "Range", "LIMITS", "CHOICES", "FLAGS", "OPTIONS", "YES_LIMITS",
                           "check_choice", "check_config", "check_network", "check_options", "check_work",
                           "check_training", "d_layer_count"), "adagan.limits")}


def __getattr__(name: str):
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
