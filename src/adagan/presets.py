"""Presets (paper App. D; official train.py; docs/training.md) and the policy that turns `adagan train`'s
options into a TrainConfig, plus the run-name policy.

A preset is a row of keywords (`Preset`); `resolve(preset, resolution, ...)` makes the full TrainConfig
of a preset for a data shape and GPU count; `for_training` applies the training flags on top and checks
the result against the data (limits.py). `run_name` names a run by everything that changes what is
learned (training/run.py puts the run in `<outdir>/<name>`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from adagan import pretrained
from adagan.config import (
    AUGMENT_SHORTCUTS,
    DIFFAUG_AUGPIPES,
    PRESET_NAMES,
    AugmentConfig,
    DiscriminatorConfig,
    GeneratorConfig,
    LossConfig,
    OptimConfig,
    TrainConfig,
    apply_overrides,
    to_dict,
)
from adagan.errors import ConfigError
from adagan.limits import check_batch_split, check_choice, check_gpus, check_resolution, check_training


@dataclass(frozen=True)
class Preset:
    """One preset: `ref_gpus` is the GPU count its batch was tuned for; the rest are the settings it fills."""

    ref_gpus: int
    kimg: float
    batch: int
    mbstd: int  # D.mbstd_group_size
    fmaps: float  # channel_base = fmaps * 32768 (unless channel_base is given)
    lr: float  # optim.lr_g and optim.lr_d
    gamma: float  # loss.r1_gamma
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


PresetSpec = Preset  # the name before the rows took keywords

_PAPER = {"ref_gpus": 8, "kimg": 25000, "ema_rampup": None, "map_layers": 8}
PRESETS: dict[str, Preset | None] = {
    # "auto" depends on resolution and GPU count: see _auto_preset.
    "auto": None,
    "stylegan2": Preset(**_PAPER, batch=32, mbstd=4, fmaps=1, lr=0.002, gamma=10, ema_kimg=10),
    "paper256": Preset(**_PAPER, batch=64, mbstd=8, fmaps=0.5, lr=0.0025, gamma=1, ema_kimg=20),
    "paper512": Preset(**_PAPER, batch=64, mbstd=8, fmaps=1, lr=0.0025, gamma=0.5, ema_kimg=20),
    "paper1024": Preset(**_PAPER, batch=32, mbstd=4, fmaps=1, lr=0.002, gamma=2, ema_kimg=10),
    "cifar": Preset(ref_gpus=2, kimg=100000, batch=64, mbstd=32, fmaps=1, lr=0.0025, gamma=0.01, ema_kimg=500,
                    ema_rampup=0.05, map_layers=2, pl_weight=0.0, style_mixing_prob=0.0, d_architecture="orig"),
    # Small fp32 networks a 2-core CPU trains in minutes at 32x32 (G 0.7M / D 0.9M params): 32 channels
    # at 32x32, 128 below. Like `cifar`, no path-length regularization and no style mixing: on this
    # budget both cost time and, measured at equal wall time, gave less recognisable samples.
    # ada_kimg 20 instead of the paper's 500: runs here last 100-500 kimg, not 25,000, and with 500 the
    # controller had moved p by 0.01 after 8 kimg while r_t was already 0.87 (docs/augment.md).
    "cpu": Preset(ref_gpus=1, kimg=1000, batch=32, mbstd=4, fmaps=1, lr=0.0025, gamma=0.05, ema_kimg=2.5,
                  ema_rampup=0.05, map_layers=2, channel_max=128, z_dim=128, w_dim=128, channel_base=1024,
                  max_minutes=30, pl_weight=0.0, style_mixing_prob=0.0, num_fp16_res=0, conv_clamp=None,
                  tick_kimg=1.0, snap_ticks=10, ada_kimg=20),
}
if tuple(PRESETS) != PRESET_NAMES:  # config.PRESET_NAMES is what limits.py checks `cfg` against
    raise AssertionError("config.PRESET_NAMES must list the presets of presets.PRESETS")


def _auto_preset(resolution: int, gpus: int) -> Preset:
    """The official `auto` config: batch, gamma and EMA from the resolution and the GPU count."""
    res = resolution
    batch = max(min(gpus * min(4096 // res, 32), 64), gpus)
    return Preset(ref_gpus=gpus, kimg=25000, batch=batch, mbstd=min(batch // gpus, 4), fmaps=1 if res >= 512 else 0.5,
                  lr=0.002 if res >= 1024 else 0.0025, gamma=0.0002 * (res**2) / batch, ema_kimg=batch * 10 / 32,
                  ema_rampup=0.05, map_layers=2)


def resolve(preset: str, resolution: int, img_channels: int = 3, c_dim: int = 0, gpus: int = 1) -> TrainConfig:
    """The full training config of `preset` for this data shape and GPU count."""
    check_choice("preset --cfg", preset, PRESETS)
    check_resolution(resolution)
    if img_channels not in (1, 3, 4):
        raise ConfigError(f"img_channels must be 1, 3 or 4, got {img_channels}")
    check_gpus(gpus)
    spec = PRESETS[preset] or _auto_preset(resolution, gpus)
    # Per-GPU batch as in the reference setup; fewer GPUs accumulate gradients.
    batch_gpu = max(spec.batch // max(spec.ref_gpus, gpus), 1)
    channel_base = spec.channel_base or int(spec.fmaps * 32768)
    shared = {"c_dim": c_dim, "img_resolution": resolution, "img_channels": img_channels, "channel_base": channel_base,
              "channel_max": spec.channel_max, "num_fp16_res": spec.num_fp16_res, "conv_clamp": spec.conv_clamp}
    return TrainConfig(
        cfg=preset,
        G=GeneratorConfig(z_dim=spec.z_dim, w_dim=spec.w_dim, map_layers=spec.map_layers, **shared),
        D=DiscriminatorConfig(architecture=spec.d_architecture, mbstd_group_size=spec.mbstd, **shared),
        loss=LossConfig(r1_gamma=spec.gamma, pl_weight=spec.pl_weight, style_mixing_prob=spec.style_mixing_prob),
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
# Official train.py 313-315: transfer learning (--resume) sets ada_kimg 100 (the paper's 500: 5x faster)
# and drops the EMA ramp-up.
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
    check_gpus(gpus)
    if cond and dataset.c_dim == 0:
        raise ConfigError(f"--cond needs labels, but {dataset.name} has none; create the dataset with "
                          "`adagan dataset --labels subfolders` (or drop --cond)")
    preset = preset or ("cpu" if device == "cpu" else "auto")
    config = resolve(preset, dataset.resolution, img_channels=dataset.num_channels, c_dim=dataset.c_dim, gpus=gpus)
    config = _apply_flags(config, gpus=gpus, data=data, mirror=mirror, cond=cond, subset=subset, batch=batch,
                          batch_gpu=batch_gpu, kimg=kimg, max_minutes=max_minutes, freezed=freezed,
                          tick_kimg=tick, snap_ticks=snap, seed=seed, metrics=metrics)
    loss = {k: v for k, v in (("r1_gamma", gamma), ("lecam", lecam)) if v is not None}
    config = dataclasses.replace(config, loss=dataclasses.replace(config.loss, **loss))
    config = _apply_augment(config, aug=aug, p=p, target=target, augpipe=augpipe)
    if resume is not None:
        # Transfer learning, as the official train.py: ada_kimg 100 whatever the preset's (the cpu preset's
        # 20 too: measured on the smileys, 100 ends with the same p and fewer near-copies and hue leak,
        # docs/results.md "Candidates for the default run") and G_ema averages over ema_kimg from the
        # first image (the pretrained G is already good).
        config = dataclasses.replace(config, ema_rampup=None, augment=dataclasses.replace(
            config.augment, ada_kimg=RESUME_ADA_KIMG))
    config = apply_overrides(config, list(overrides))
    check_training(config, dataset)
    return config


def _apply_flags(config: TrainConfig, *, gpus: int, batch: int | None, batch_gpu: int | None, kimg: float | None,
                 max_minutes: float | None, **fields) -> TrainConfig:
    """The top-level flags; None leaves the preset's value. --kimg lifts the preset's time limit."""
    changes = {k: v for k, v in fields.items() if v is not None or k == "subset"}
    if batch is not None:
        check_batch_split(batch, gpus)
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


# --------------------------------------------------------------------------
# The run-name policy: a run is named by every setting that changes what is learned.

# Settings that only say how long, how often or how fast: rerunning with a larger --kimg extends the run.
NOT_IN_NAME = ("kimg", "max_minutes", "tick_kimg", "snap_ticks", "metrics", "amp_bf16", "channels_last",
               "cudnn_benchmark", "allow_tf32")
# Settings added after runs were named, hashed only when on, so that runs named before keep their name (and resume).
LATER_LOSS_SETTINGS = ("lecam", "lecam_decay")


def run_name(config: TrainConfig, dataset_name: str, resume: str | None) -> str:
    """`<dataset>-<preset>-<aug>[-...]-<hash>`: readable parts plus a short hash of every learned setting."""
    d = to_dict(config)
    for key in NOT_IN_NAME:
        d.pop(key, None)
    if not config.loss.lecam:
        for key in LATER_LOSS_SETTINGS:
            d["loss"].pop(key, None)
    source = pretrained.parse(resume) if resume else None
    d["resume"] = source.key if source else None  # a file's absolute path (as before), else its URL or name
    digest = hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:6]
    aug = config.augment
    parts = [dataset_name, config.preset, aug.mode if aug.mode != "fixed" else f"p{aug.p:g}"]
    if aug.mode != "noaug" and aug.augpipe in DIFFAUG_AUGPIPES:
        parts.append(aug.augpipe)
    if config.loss.lecam:
        parts.append(f"lecam{config.loss.lecam:g}")
    parts += [name for name, on in (("cond", config.cond), ("mirror", config.mirror)) if on]
    if config.subset:
        parts.append(f"sub{config.subset}")
    if resume:
        parts.append("from-" + re.sub(r"[^A-Za-z0-9_.-]+", "", source.label)[:24])
    parts.append(digest)
    return "-".join(parts)


def same_run(theirs: dict, config: TrainConfig) -> bool:
    """Whether a saved train_config (to_dict form) names the same run as `config`: equal learned settings."""
    mine = to_dict(config)
    return isinstance(theirs, dict) and all(theirs.get(k) == v for k, v in mine.items() if k not in NOT_IN_NAME)
