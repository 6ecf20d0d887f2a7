import pytest

from adagan.config import DiscriminatorConfig, GeneratorConfig


def tiny_g(res=16, c_dim=0, img_channels=3, **kw):
    base = dict(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=res, img_channels=img_channels,
                channel_base=16 * res, channel_max=16, map_layers=2)
    base.update(kw)
    return GeneratorConfig(**base)


def tiny_d(res=16, c_dim=0, img_channels=3, **kw):
    base = dict(c_dim=c_dim, img_resolution=res, img_channels=img_channels, channel_base=16 * res,
                channel_max=16, cmap_dim=16, map_layers=2, mbstd_group_size=2)
    base.update(kw)
    return DiscriminatorConfig(**base)


@pytest.fixture
def tiny_cfgs():
    return tiny_g, tiny_d
