import copy
import functools
import types

import pytest
import torch


def tiny_generator(g_cfg, res=16, c_dim=0, seed=0, **kw):
    """A tiny G with non-zero noise strengths and w_avg, so noise and truncation matter in tests."""
    from adagan.networks import Generator

    torch.manual_seed(seed)
    G = Generator(g_cfg(res, c_dim, **kw)).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.2)
        G.mapping.w_avg.normal_()
    return G


def tiny_discriminator(d_cfg, res=16, c_dim=0, seed=1):
    from adagan.networks import Discriminator

    torch.manual_seed(seed)
    return Discriminator(d_cfg(res, c_dim)).eval()


class TinyLPIPS(torch.nn.Module):
    """Stand-in for LPIPS-VGG16: pixels plus a fixed random conv layer; squared L2 of features = distance."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.zero_()
        self.requires_grad_(False)

    def features(self, img_0_255):
        x = img_0_255 / 127.5 - 1
        return torch.cat([x.flatten(1), torch.tanh(self.conv(x)).flatten(1)], dim=1) * 0.05


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny networks: thread hand-offs cost more than they save (and the suite shares 2 cores).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def snapshot(tmp_path, tiny_cfgs):
    """A network file like `adagan train` writes (G, D, G_ema) with a tiny 16x16 generator."""
    from adagan.io import save_networks

    g_cfg, d_cfg = tiny_cfgs
    path = tmp_path / "network-snapshot-000001.safetensors"
    G = tiny_generator(g_cfg)
    save_networks(path, G=G, D=tiny_discriminator(d_cfg), G_ema=copy.deepcopy(G))
    return path


@pytest.fixture
def inf_helpers(tiny_cfgs):
    """Helpers for tests (test modules cannot import conftest under --import-mode=importlib)."""
    g_cfg, d_cfg = tiny_cfgs
    return types.SimpleNamespace(tiny_generator=functools.partial(tiny_generator, g_cfg),
                                 tiny_discriminator=functools.partial(tiny_discriminator, d_cfg),
                                 TinyLPIPS=TinyLPIPS, tiny_g_cfg=g_cfg, tiny_d_cfg=d_cfg)
