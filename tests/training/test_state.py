"""TrainState saved whole by checkpoint (one place for resume state), the legacy layout, G_ema."""

import pytest
import torch

from adagan.augment import AdaController, AugmentPipe
from adagan.config import TrainConfig, from_dict
from adagan.data import InfiniteSampler
from adagan.io import load_extra_tensors, load_networks, read_metadata, save_networks
from adagan.training import checkpoint
from adagan.training.loss import StyleGAN2Loss
from adagan.training.state import TrainState
from adagan.training.trainer import build_phases, ema_beta, update_ema


def _state(tiny_cfgs, seed=0):
    from adagan.networks import Discriminator, Generator

    g, d = tiny_cfgs
    torch.manual_seed(seed)
    G, D = Generator(g()), Discriminator(d())
    G_ema = Generator(g())
    config = TrainConfig(G=g(), D=d())
    phases = build_phases(G, D, config.loss, config.optim)
    ctl = AdaController(AugmentPipe("bgc"), batch=4)
    return TrainState(G=G, D=D, G_ema=G_ema, opt_G=phases[0].opt, opt_D=phases[-1].opt,
                      loss=StyleGAN2Loss(G, D, None, config.loss), sampler=InfiniteSampler(10, seed=1),
                      controller=ctl), config


def _advance(state):
    """Give every part a value a fresh state does not have."""
    for opt, net in ((state.opt_G, state.G), (state.opt_D, state.D)):
        for p in net.parameters():
            p.grad = torch.randn_like(p)
        opt.step()
    state.progress.cur_nimg, state.progress.cur_tick, state.progress.batch_idx = 96, 3, 24
    state.loss.pl_mean.fill_(0.25)
    state.controller.accumulate(torch.tensor([1.0, 1.0, -1.0]))
    state.controller._set_p(0.125)
    it = iter(state.sampler)
    for _ in range(7):
        next(it)
    state.origin.network, state.origin.kimg = "builtin:twemoji32", 459.104


def _assert_same(a: TrainState, b: TrainState):
    assert a.state_dict().keys() == b.state_dict().keys()
    assert a.progress == b.progress and a.sampler.position == b.sampler.position
    assert a.controller.state_dict() == b.controller.state_dict() and float(b.controller.pipe.p) == 0.125
    assert torch.equal(a.loss.pl_mean, b.loss.pl_mean)
    assert a.origin == b.origin
    for name in ("opt_G", "opt_D"):
        sa, sb = getattr(a, name).state_dict()["state"], getattr(b, name).state_dict()["state"]
        assert sa.keys() == sb.keys() and all(torch.equal(sa[i][k], sb[i][k]) for i in sa for k in sa[i])
    for name, net in a.networks.items():
        for k, v in net.state_dict().items():
            assert torch.equal(v, b.networks[name].state_dict()[k]), (name, k)


def test_checkpoint_saves_and_restores_the_whole_state(tiny_cfgs, tmp_path):
    a, config = _state(tiny_cfgs)
    _advance(a)
    path = checkpoint.save(tmp_path, a, config)
    assert path == checkpoint.state_path(tmp_path, 96)
    meta = read_metadata(path)
    assert meta["meta.progress"] == {"cur_nimg": 96, "cur_tick": 3, "batch_idx": 24}
    assert meta["meta.sampler"]["position"] == 7 and "opt_G.0.exp_avg" in load_extra_tensors(path)
    b, _ = _state(tiny_cfgs, seed=1)
    checkpoint.load(path, b)
    _assert_same(a, b)
    assert b.origin.network == "builtin:twemoji32" and b.origin.kimg == 459.104


def test_a_new_part_is_saved_by_adding_it_to_parts(tiny_cfgs, tmp_path):
    class Counter:
        def __init__(self):
            self.n, self.t = 0, torch.zeros(2)

        def state_dict(self):
            return {"n": self.n, "t": self.t}

        def load_state_dict(self, state):
            self.n, self.t = state.get("n", 0), state.get("t", torch.zeros(2))

    class WithCounter(TrainState):
        counter = Counter()

        def parts(self):
            return {**super().parts(), "counter": self.counter}

    a, config = _state(tiny_cfgs)
    a.__class__ = WithCounter
    a.counter = Counter()
    a.counter.n, a.counter.t = 5, torch.tensor([1.0, 2.0])
    path = checkpoint.save(tmp_path, a, config)
    b, _ = _state(tiny_cfgs)
    b.__class__ = WithCounter
    b.counter = Counter()
    checkpoint.load(path, b)
    assert b.counter.n == 5 and torch.equal(b.counter.t, torch.tensor([1.0, 2.0]))


def test_states_saved_before_trainstate_still_load(tiny_cfgs, tmp_path):
    a, config = _state(tiny_cfgs)
    _advance(a)
    path = checkpoint.save(tmp_path, a, config)
    # Rewrite the file in the earlier layout: `pl_mean` and `sampler_position` at the top level.
    info, tensors = read_metadata(path), load_extra_tensors(path)
    meta = {k[len("meta."):]: v for k, v in info.items() if k.startswith("meta.")}
    tensors["pl_mean"] = tensors.pop("loss.pl_mean")
    meta["sampler_position"] = meta.pop("sampler")["position"]
    del meta["origin"]  # nor did it have the run's origin: it loads as "none recorded"
    save_networks(path, **load_networks(path), config=from_dict(TrainConfig, info["train_config"]),
                  extra_tensors=tensors, metadata=meta)
    b, _ = _state(tiny_cfgs, seed=1)
    b.origin.network = "stale"
    checkpoint.load(path, b)
    assert b.origin.network is None and b.origin.kimg is None
    a.origin.network = a.origin.kimg = None
    _assert_same(a, b)


def test_checkpoint_keeps_the_newest_states(tiny_cfgs, tmp_path):
    a, config = _state(tiny_cfgs)
    for nimg in (4, 8, 12, 16):
        a.progress.cur_nimg = nimg
        checkpoint.save(tmp_path, a, config, keep=2)
    assert [p.name for p in checkpoint.list_states(tmp_path)] == [checkpoint.state_path(tmp_path, n).name
                                                                   for n in (12, 16)]


def test_ema_half_life_and_rampup(tiny_cfgs):
    assert ema_beta(10**9, 32, 10, None) == pytest.approx(0.5 ** (32 / 10000))
    assert ema_beta(1000, 32, 10, 0.05) == pytest.approx(0.5 ** (32 / 50))  # ramp: half-life <= 5% of nimg
    assert ema_beta(0, 32, 10, 0.05) == 0  # the first iteration copies G
    g, _ = tiny_cfgs
    from adagan.networks import Generator

    torch.manual_seed(0)
    G, G_ema = Generator(g()), Generator(g())
    G.mapping.w_avg.fill_(3)
    want = [p.lerp(q, 0.75) for p, q in zip(G.parameters(), G_ema.parameters(), strict=True)]
    update_ema(G_ema, G, 0.75)
    assert all(torch.equal(a, b) for a, b in zip(G_ema.parameters(), want, strict=True))
    assert torch.equal(G_ema.mapping.w_avg, G.mapping.w_avg)
