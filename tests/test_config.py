"""Presets (paper App. D), JSON round trip and dotted overrides."""

import pytest

from adagan.config import TrainConfig, apply_overrides, from_json, to_json
from adagan.errors import ConfigError
from adagan.presets import PRESETS, resolve


@pytest.mark.parametrize("name", list(PRESETS))
def test_json_round_trip(name):
    cfg = resolve(name, 64, c_dim=3)
    assert from_json(to_json(cfg)) == cfg


def test_paper_presets_exact():
    c = resolve("paper256", 256)
    assert (c.batch, c.D.mbstd_group_size, c.G.channel_base, c.optim.lr_g, c.loss.r1_gamma, c.ema_kimg) == \
        (64, 8, 16384, 0.0025, 1, 20)
    assert c.batch_gpu == 8 and c.G.map_layers == 8 and c.ema_rampup is None
    c = resolve("cifar", 32)
    assert c.loss.pl_weight == 0 and c.loss.style_mixing_prob == 0 and c.D.architecture == "orig"
    assert (c.batch, c.D.mbstd_group_size, c.loss.r1_gamma, c.ema_kimg, c.ema_rampup, c.kimg) == \
        (64, 32, 0.01, 500, 0.05, 100000)
    c = resolve("stylegan2", 1024)
    assert (c.batch, c.optim.lr_d, c.loss.r1_gamma, c.G.channel_base) == (32, 0.002, 10, 32768)


@pytest.mark.parametrize("res,gpus", [(32, 1), (256, 1), (256, 8), (1024, 2), (512, 4)])
def test_auto_formulas(res, gpus):
    c = resolve("auto", res, gpus=gpus)
    batch = max(min(gpus * min(4096 // res, 32), 64), gpus)
    assert c.batch == batch
    assert c.D.mbstd_group_size == min(batch // gpus, 4)
    assert c.G.channel_base == (32768 if res >= 512 else 16384)
    assert c.optim.lr_g == (0.002 if res >= 1024 else 0.0025)
    assert c.loss.r1_gamma == pytest.approx(0.0002 * res * res / batch)
    assert c.ema_kimg == pytest.approx(batch * 10 / 32) and c.ema_rampup == 0.05 and c.G.map_layers == 2
    assert c.batch_gpu * gpus == batch


def test_overrides():
    c = resolve("cpu", 32)
    c2 = apply_overrides(c, ["--loss.r1_gamma=0.5", "batch=16", "G.conv_clamp=none", "mirror=true",
                             "metrics=fid1k,kid1k", "ema_rampup=None"])
    assert c2.loss.r1_gamma == 0.5 and c2.batch == 16 and c2.G.conv_clamp is None and c2.mirror
    assert c2.metrics == ("fid1k", "kid1k") and c2.ema_rampup is None
    assert c.loss.r1_gamma != 0.5  # frozen original untouched
    with pytest.raises(ConfigError, match="unknown setting 'loss.r2'"):
        apply_overrides(c, {"loss.r2": "1"})
    with pytest.raises(ConfigError, match="expected int"):
        apply_overrides(c, {"batch": "many"})
    with pytest.raises(ConfigError, match="is a section"):
        apply_overrides(c, {"loss": "1"})
    with pytest.raises(ConfigError, match="section.field=value"):
        apply_overrides(c, ["batch"])


def test_resolve_errors():
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve("huge", 256)
    for bad in (8, 48, 2048):
        with pytest.raises(ConfigError, match="power of two from 16 to 1024"):
            resolve("auto", bad)
    with pytest.raises(ConfigError, match="unknown TrainConfig field"):
        from_json('{"bogus": 1}', TrainConfig)


def test_reg_interval_none_or_zero_means_not_lazy():
    # LossConfig.r1_interval / pl_interval: None (the official spelling) or 0 = regularize every step.
    c = apply_overrides(resolve("auto", 64), ["loss.r1_interval=none", "loss.pl_interval=0"])
    assert c.loss.r1_interval is None and c.loss.pl_interval == 0
    assert from_json(to_json(c)) == c
    with pytest.raises(ConfigError, match="expected int"):
        apply_overrides(c, ["loss.r1_interval=often"])


def test_ada_speed_per_preset():
    # The paper presets keep its 500 kimg; the cpu preset (100-500 kimg runs) adapts 25x faster.
    assert {name: resolve(name, 32).augment.ada_kimg for name in PRESETS} == \
        {**{name: 500.0 for name in PRESETS}, "cpu": 20.0}


def test_every_setting_has_a_range_listed_in_the_docs():
    # One place for the valid values (limits.LIMITS / CHOICES): every numeric or choice field of the
    # training config has an entry, and docs/limits.md names each one.
    import dataclasses
    import typing
    from pathlib import Path

    from adagan.limits import CHOICES, LIMITS, OPTIONS

    def fields(cls, prefix=""):
        for f in dataclasses.fields(cls):
            tp = typing.get_type_hints(cls)[f.name]
            if dataclasses.is_dataclass(tp):
                yield from fields(tp, f"{f.name}.")
            elif tp not in (bool, str) and typing.get_origin(tp) is not tuple and f.name not in ("data",):
                yield prefix + f.name

    missing = [k for k in fields(TrainConfig) if k not in LIMITS and k not in CHOICES]
    assert not missing, f"add these to limits.LIMITS: {missing}"
    doc = (Path(__file__).resolve().parents[1] / "docs" / "limits.md").read_text()
    undocumented = [k for k in [*LIMITS, *CHOICES] if f"`{k}`" not in doc]
    assert not undocumented, f"list these in docs/limits.md: {undocumented}"
    for cmd, opts in OPTIONS.items():
        for name in opts:
            assert f"`--{name.replace('_', '-')}`" in doc, (cmd, name)


@pytest.mark.parametrize("override,message", [
    ("G.architecture=bogus", "G.architecture must be one of skip, orig, resnet"),
    ("tick_kimg=0", "--tick (tick_kimg) must be a number in (0, 1e+06]"),
    ("optim.beta2=2", "optim.beta2 must be a number in [0, 0.9999]"),
    ("G.z_dim=-5", "G.z_dim must be an integer in [1, 2048]"),
    ("freezed=100", "--freezed 100: D has"),
    ("kimg=nan", "--kimg (kimg) must be a number in (0, 1e+07]"),
])
def test_check_config_names_the_valid_range(override, message):
    from adagan.limits import check_config

    with pytest.raises(ConfigError) as e:
        check_config(apply_overrides(resolve("cpu", 32), [override]))
    assert message in str(e.value)


def test_d_layer_count_matches_the_network(tiny_cfgs):
    from adagan.limits import d_layer_count
    from adagan.networks import Discriminator

    for arch in ("orig", "skip", "resnet"):
        for res in (16, 32):
            cfg = tiny_cfgs[1](res=res, architecture=arch)
            assert d_layer_count(cfg) == len(Discriminator(cfg).layer_names()), (arch, res)
