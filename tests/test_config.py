"""Presets (paper App. D), JSON round trip and dotted overrides."""

import pytest

from adagan.config import PRESETS, TrainConfig, apply_overrides, from_json, resolve, to_json
from adagan.errors import ConfigError


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
