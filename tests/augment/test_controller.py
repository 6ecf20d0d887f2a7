import pytest
import torch

from adagan.augment import AdaController, AugmentPipe
from adagan.errors import ConfigError


def make(mode="ada", **kw):
    pipe = AugmentPipe("bgc")
    return pipe, AdaController(pipe, mode=mode, target=0.6, interval=4, ada_kimg=1.0, batch=8, **kw)


def feed(ctl, r_t, n=32):
    k = round((r_t + 1) / 2 * n)  # k positive, n - k negative signs
    ctl.accumulate(torch.cat([torch.ones(k), -torch.ones(n - k)]))


def test_p_rises_and_falls_at_exactly_the_specified_speed():
    pipe, ctl = make()
    step = 8 * 4 / (1.0 * 1000)  # batch * interval / (ada_kimg * 1000)
    for i in range(1, 11):
        feed(ctl, 1.0)
        ctl.step(i * 4)
        assert ctl.p == pytest.approx(i * step, abs=1e-12)
        assert float(pipe.p) == pytest.approx(i * step, abs=1e-7)
    assert ctl.r_t == 1.0
    for i in range(9, -1, -1):
        feed(ctl, -0.5)
        ctl.step()
        assert ctl.p == pytest.approx(i * step, abs=1e-12)
    feed(ctl, 0.0)
    ctl.step()
    assert ctl.p == 0.0 and float(pipe.p) == 0.0  # clamped at 0


def test_r_t_is_the_mean_over_everything_since_the_last_update():
    pipe, ctl = make()
    ctl.accumulate(torch.ones(30))  # main D step
    ctl.accumulate(-torch.ones(10))  # R1 step
    ctl.step()
    assert ctl.r_t == pytest.approx(0.5)
    assert ctl.p == 0.0  # 0.5 < target: would go down, clamped
    ctl.step()  # nothing accumulated: no change
    assert ctl.r_t == pytest.approx(0.5) and ctl.p == 0.0


def test_all_reduce_makes_every_process_agree():
    # Two "processes" with different local statistics; all_reduce sums both, so both compute the same p.
    _, a = make()
    _, b = make()
    feed(a, 1.0, n=40)
    feed(b, 0.4, n=40)  # alone, b would keep p at 0
    total = a._acc + b._acc

    def reduce(t):
        t.copy_(total)

    a.step(all_reduce=reduce)
    b.step(all_reduce=reduce)
    assert a.p == b.p > 0 and a.r_t == b.r_t == pytest.approx(0.7)


def test_fixed_and_noaug_modes():
    pipe, ctl = make("fixed", p=0.2)
    feed(ctl, 1.0)
    ctl.step()
    assert ctl.p == 0.2 and float(pipe.p) == pytest.approx(0.2)
    pipe, ctl = make("noaug", p=0.3)
    feed(ctl, 1.0)
    ctl.step()
    assert ctl.p == 0.0 and float(pipe.p) == 0.0


def test_state_dict_restores_exactly():
    pipe, ctl = make()
    for _ in range(7):
        feed(ctl, 0.9)
        ctl.step()
    feed(ctl, 0.9)  # pending statistics are part of the state
    state = ctl.state_dict()
    pipe2, ctl2 = make()
    ctl2.load_state_dict(state)
    assert ctl2.p == ctl.p and float(pipe2.p) == float(pipe.p) and ctl2.r_t == ctl.r_t
    ctl.step()
    ctl2.step()
    assert ctl2.p == ctl.p


def test_bad_arguments():
    with pytest.raises(ConfigError, match="unknown augmentation mode"):
        AdaController(None, mode="sometimes")
    with pytest.raises(ConfigError, match="ada_kimg"):
        AdaController(None, ada_kimg=0)
