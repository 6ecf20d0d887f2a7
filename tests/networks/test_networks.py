"""Generator and discriminator: shapes, gradients, equivalences, parameter counts (SPEC §1)."""

import math

import pytest
import torch

from adagan import build_networks
from adagan.config import GeneratorConfig, num_ws
from adagan.networks import Discriminator, Generator


def _g(tiny_cfgs, **kw):
    torch.manual_seed(0)
    return Generator(tiny_cfgs[0](**kw))


def _d(tiny_cfgs, **kw):
    torch.manual_seed(1)
    return Discriminator(tiny_cfgs[1](**kw))


def _labels(n, c_dim):
    return torch.nn.functional.one_hot(torch.arange(n) % c_dim, c_dim).float() if c_dim else None


@pytest.mark.parametrize("res", [16, 32, 64])
@pytest.mark.parametrize("c_dim", [0, 3])
@pytest.mark.parametrize("img_channels", [1, 3, 4])
def test_shapes(tiny_cfgs, res, c_dim, img_channels):
    G = _g(tiny_cfgs, res=res, c_dim=c_dim, img_channels=img_channels)
    D = _d(tiny_cfgs, res=res, c_dim=c_dim, img_channels=img_channels)
    z = torch.randn(4, G.z_dim)
    c = _labels(4, c_dim)
    ws = G.mapping(z, c)
    assert ws.shape == (4, num_ws(res), G.w_dim) and G.num_ws == num_ws(res)
    img = G.synthesis(ws)
    assert img.shape == (4, img_channels, res, res) and img.dtype == torch.float32
    assert D(img, c).shape == (4, 1)


def test_extreme_resolutions_run(tiny_cfgs):
    for res in (16, 1024):
        G = _g(tiny_cfgs, res=res, channel_base=2 * res, channel_max=8)
        D = _d(tiny_cfgs, res=res, channel_base=2 * res, channel_max=8)
        img = G(torch.randn(2, G.z_dim))
        assert img.shape == (2, 3, res, res)
        assert D(img).shape == (2, 1)
        assert G.num_ws == 2 * int(math.log2(res)) - 2


@pytest.mark.parametrize("c_dim", [0, 2])
@pytest.mark.parametrize("arch", ["resnet", "orig"])
def test_every_parameter_gets_finite_nonzero_gradient(tiny_cfgs, c_dim, arch):
    G = _g(tiny_cfgs, c_dim=c_dim)
    D = _d(tiny_cfgs, c_dim=c_dim, architecture=arch)
    # noise_strength starts at 0, which would zero the noise gradients' downstream; nudge it.
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
    G.train()
    D.train()
    c = _labels(4, c_dim)
    logits = D(G(torch.randn(4, G.z_dim), c), c)
    logits.square().sum().backward()
    for net in (G, D):
        for name, p in net.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_fused_equals_nonfused(tiny_cfgs):
    G = _g(tiny_cfgs, c_dim=2).double()
    z = torch.randn(3, G.z_dim, dtype=torch.float64)
    c = _labels(3, 2).double()
    ws = G.mapping(z, c).double()
    a = G.synthesis(ws, noise_mode="const", fused_modconv=True)
    b = G.synthesis(ws, noise_mode="const", fused_modconv=False)
    torch.testing.assert_close(a, b)


def test_same_seed_same_image_whatever_the_batch(tiny_cfgs):
    G = _g(tiny_cfgs).eval()
    z = torch.randn(5, G.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = G(z, noise_mode="const")
        parts = torch.cat([G(z[:2], noise_mode="const"), G(z[2:], noise_mode="const")])
        single = G(z[4:5], noise_mode="const")
    torch.testing.assert_close(full, parts, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(full[4:5], single, atol=1e-5, rtol=1e-5)


def test_noise_modes(tiny_cfgs):
    G = _g(tiny_cfgs).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
        z = torch.randn(2, G.z_dim)
        r1, r2 = G(z, noise_mode="random"), G(z, noise_mode="random")
        c1, c2 = G(z, noise_mode="const"), G(z, noise_mode="const")
        n = G(z, noise_mode="none")
    assert not torch.equal(r1, r2)
    assert torch.equal(c1, c2)
    assert not torch.allclose(c1, n)
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="loud")


def test_truncation_and_w_avg(tiny_cfgs):
    G = _g(tiny_cfgs).eval()
    assert torch.count_nonzero(G.mapping.w_avg) == 0
    z = torch.randn(8, G.z_dim)
    G.mapping(z, update_emas=True)
    w = G.mapping(z)[:, 0]
    expected = w.mean(0) * (1 - 0.995)
    torch.testing.assert_close(G.mapping.w_avg, expected)
    # psi = 0 -> every sample is the w_avg image.
    with torch.no_grad():
        out = G(z[:3], truncation_psi=0, noise_mode="const")
        avg = G.synthesis(G.mapping.w_avg.expand(1, G.num_ws, -1), noise_mode="const")
    torch.testing.assert_close(out, avg.expand(3, -1, -1, -1), atol=1e-5, rtol=1e-5)
    # cutoff: only the first ws are truncated.
    ws = G.mapping(z[:2], truncation_psi=0.5, truncation_cutoff=2)
    ws_full = G.mapping(z[:2])
    torch.testing.assert_close(ws[:, 2:], ws_full[:, 2:])
    torch.testing.assert_close(ws[:, :2], G.mapping.w_avg.lerp(ws_full[:, :2], 0.5))


def test_mapping_equalized_lr_and_names(tiny_cfgs):
    G = _g(tiny_cfgs, c_dim=2)
    names = set(dict(G.named_parameters())) | set(dict(G.named_buffers()))
    for n in ["mapping.fc0.weight", "mapping.embed.weight", "synthesis.b4.const", "synthesis.b16.conv0.weight",
              "synthesis.b16.conv1.affine.bias", "synthesis.b16.torgb.weight", "synthesis.b4.conv1.noise_const",
              "mapping.w_avg"]:
        assert n in names, n
    # Stored weights have std 1/lr_mul (= 100 for the mapping), the effective weights 1/sqrt(fan_in).
    assert 50 < G.mapping.fc0.weight.std().item() < 200
    assert G.mapping.fc0.weight_gain == pytest.approx(0.01 / math.sqrt(32))
    torch.testing.assert_close(G.synthesis.b4.conv1.affine.bias, torch.ones(16))


def test_projection_discriminator_uses_labels(tiny_cfgs):
    D = _d(tiny_cfgs, c_dim=3).eval()
    img = torch.randn(2, 3, 16, 16)
    a = D(img, _labels(2, 3))
    b = D(img, torch.roll(_labels(2, 3), 1, dims=1))
    assert not torch.allclose(a, b)
    assert "mapping.fc7.weight" in dict(Discriminator(tiny_cfgs[1](c_dim=3, map_layers=8)).named_parameters())


def test_minibatch_std_groups():
    from adagan.networks.layers import MinibatchStdLayer

    x = torch.zeros(4, 2, 2, 2)
    x[0] = 1.0  # group of sample 0 is {0, 2} (every N/G-th sample)
    y = MinibatchStdLayer(2)(x)
    assert y.shape == (4, 3, 2, 2)
    assert y[0, 2].allclose(torch.tensor(0.5)) and y[2, 2].allclose(torch.tensor(0.5))
    assert y[1, 2].abs().max() < 1e-3
    assert MinibatchStdLayer(4)(torch.randn(3, 2, 2, 2)).shape == (3, 3, 2, 2)  # batch not divisible


@pytest.mark.parametrize("preset,res,g_params,d_params", [
    ("paper256", 256, 24_767_458, 24_001_089),
    ("paper1024", 1024, 30_370_060, 29_012_513),
    ("stylegan2", 1024, 30_370_060, 29_012_513),
    ("auto", 256, 23_191_522, 24_001_089),
])
def test_parameter_counts_match_spec(preset, res, g_params, d_params):
    G, D = build_networks(preset, res)
    assert sum(p.numel() for p in G.parameters()) == g_params
    assert sum(p.numel() for p in D.parameters()) == d_params


def test_conditional_counts_add_label_mappings():
    G0, D0 = build_networks("paper256", 256)
    G1, D1 = build_networks("paper256", 256, c_dim=10)
    n = lambda m: sum(p.numel() for p in m.parameters())
    # G: embed FC (10 -> 512) and fc0 widened by 512 inputs. D: 8-layer mapping + embed, out FC -> 512.
    assert n(G1) - n(G0) == (10 * 512 + 512) + 512 * 512
    assert n(D1) - n(D0) == (10 * 512 + 512) + 8 * (512 * 512 + 512) + (512 * 511 + 511)


def test_build_networks_matches_preset_config():
    G, D = build_networks("cifar", 32, c_dim=10)
    assert G.mapping.num_layers == 2 and D.cfg.architecture == "orig" and D.cfg.mbstd_group_size == 32
    assert not hasattr(D.b32, "skip")
    assert G.c_dim == 10 and D.c_dim == 10


@pytest.mark.cuda
def test_fp16_on_cuda_close_to_fp32():
    G, D = build_networks("auto", 64)
    G, D = G.cuda().eval(), D.cuda().eval()
    z = torch.randn(4, G.z_dim, device="cuda")
    with torch.no_grad():
        a = G(z, noise_mode="const")
        b = G(z, noise_mode="const", force_fp32=True)
        assert a.dtype == torch.float32 and torch.isfinite(a).all()
        assert (a - b).abs().max() < 0.1
        assert (D(a) - D(a, force_fp32=True)).abs().max() < 0.5


def test_cpu_never_uses_fp16(tiny_cfgs):
    G = Generator(GeneratorConfig(**{**tiny_cfgs[0]().__dict__, "num_fp16_res": 4}))
    assert any(getattr(G.synthesis, f"b{r}").use_fp16 for r in (8, 16))
    assert G(torch.randn(2, G.z_dim)).dtype == torch.float32
