import numpy as np
import pytest
import torch
from PIL import Image

from adagan.config import GeneratorConfig


class TinyDetector(torch.nn.Module):
    """A fixed random conv net: uint8 [N, C, H, W] -> 16-d features (the metric pipeline's detector contract)."""

    feature_dim = 16

    def __init__(self, seed=0, cache_id="tiny-detector"):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.2)
            self.conv.bias.zero_()
        self.cache_id = cache_id
        self.requires_grad_(False)

    def forward(self, images):
        x = images.float() / 127.5 - 1
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        return torch.tanh(self.conv(x)).mean(dim=(2, 3)) * 10


def tiny_generator(res=16, c_dim=0, seed=0):
    from adagan.networks import Generator

    torch.manual_seed(seed)
    cfg = GeneratorConfig(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=res, img_channels=3,
                          channel_base=16 * res, channel_max=16, map_layers=2)
    return Generator(cfg).eval()


def write_images(folder, n, res=16, seed=0, channels=3):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        # smooth random blobs (different images, same distribution per seed family)
        base = rng.integers(0, 256, [4, 4, channels]).astype(np.uint8)
        img = Image.fromarray(base.squeeze(-1) if channels == 1 else base).resize((res, res), Image.BILINEAR)
        img.save(folder / f"{i:04d}.png")
    return folder


@pytest.fixture
def detector():
    return TinyDetector()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAGAN_CACHE", str(tmp_path / "adagan-cache"))
    monkeypatch.delenv("ADAGAN_INCEPTION", raising=False)
    monkeypatch.delenv("ADAGAN_LPIPS", raising=False)
    monkeypatch.delenv("ADAGAN_INCEPTION_IMPL", raising=False)


@pytest.fixture
def mx():
    """Helpers for tests (test modules cannot import conftest under --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(TinyDetector=TinyDetector, tiny_generator=tiny_generator, write_images=write_images)
