"""Generator and discriminator: shapes, gradients, equivalences, parameter counts, every architecture
(StyleGAN2 Figure 7)."""

import copy
import math

import pytest
import torch

from adagan import build_networks
from adagan.config import GeneratorConfig, num_ws
from adagan.errors import ConfigError
from adagan.networks import Discriminator, Generator
from adagan.ops import downsample2d

G_ARCHS = ["skip", "orig", "resnet"]
D_ARCHS = ["resnet", "orig", "skip"]


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


@pytest.mark.parametrize("g_arch,d_arch", [(g, d) for g in G_ARCHS for d in D_ARCHS])
@pytest.mark.parametrize("res,c_dim,img_channels", [(16, 0, 3), (32, 3, 1)])
def test_shapes_every_architecture(tiny_cfgs, g_arch, d_arch, res, c_dim, img_channels):
    G = _g(tiny_cfgs, res=res, c_dim=c_dim, img_channels=img_channels, architecture=g_arch)
    D = _d(tiny_cfgs, res=res, c_dim=c_dim, img_channels=img_channels, architecture=d_arch)
    c = _labels(4, c_dim)
    ws = G.mapping(torch.randn(4, G.z_dim), c)
    assert G.num_ws == num_ws(res) and ws.shape == (4, num_ws(res), G.w_dim)
    img = G.synthesis(ws)
    assert img.shape == (4, img_channels, res, res) and img.dtype == torch.float32
    assert D(img, c).shape == (4, 1)


@pytest.mark.parametrize("c_dim", [0, 2])
@pytest.mark.parametrize("arch", D_ARCHS)
@pytest.mark.parametrize("g_arch", G_ARCHS)
def test_every_parameter_gets_finite_nonzero_gradient(tiny_cfgs, c_dim, arch, g_arch):
    G = _g(tiny_cfgs, c_dim=c_dim, architecture=g_arch)
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


@pytest.mark.parametrize("g_arch", G_ARCHS)
def test_fused_equals_nonfused(tiny_cfgs, g_arch):
    G = _g(tiny_cfgs, c_dim=2, architecture=g_arch).double()
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


def test_parameter_names_read_like_the_architecture(tiny_cfgs):
    names = lambda net: set(dict(net.named_parameters()))
    skip, orig, resnet = (names(_g(tiny_cfgs, res=32, architecture=a)) for a in ("skip", "orig", "resnet"))
    # skip: a ToRGB per block; orig and resnet: only the last block's; resnet: a 1x1 skip conv per block above 4x4.
    assert {f"synthesis.b{r}.torgb.weight" for r in (4, 8, 16, 32)} <= skip
    for net in (orig, resnet):
        assert "synthesis.b32.torgb.weight" in net and not any(f"b{r}.torgb." in n for n in net for r in (4, 8, 16))
    assert {f"synthesis.b{r}.skip.weight" for r in (8, 16, 32)} <= resnet
    assert not any(".skip." in n for n in skip | orig) and "synthesis.b4.skip.weight" not in resnet
    assert resnet - orig == {f"synthesis.b{r}.skip.weight" for r in (8, 16, 32)}
    D = _d(tiny_cfgs, res=32, architecture="skip")
    assert dict(D.named_parameters())["b16.fromrgb.weight"].shape == (16, 3, 1, 1)
    d_names = names(D)
    assert {f"b{r}.fromrgb.weight" for r in (4, 8, 16, 32)} <= d_names and not any(".skip." in n for n in d_names)
    assert "b4.fromrgb.bias" in d_names
    for arch in ("resnet", "orig"):
        d_names = names(_d(tiny_cfgs, res=32, architecture=arch))
        assert {n for n in d_names if "fromrgb" in n} == {"b32.fromrgb.weight", "b32.fromrgb.bias"}


def test_unknown_architecture_is_a_config_error(tiny_cfgs):
    with pytest.raises(ConfigError, match="G.architecture must be one of"):
        Generator(tiny_cfgs[0](architecture="residual"))
    with pytest.raises(ConfigError, match="D.architecture must be one of"):
        Discriminator(tiny_cfgs[1](architecture="residual"))


def test_orig_generator_image_is_the_last_torgb_alone(tiny_cfgs):
    G = _g(tiny_cfgs, res=32, architecture="orig", conv_clamp=None).eval()
    ws = G.mapping(torch.randn(3, G.z_dim))
    feats = {}
    G.synthesis.b32.torgb.register_forward_hook(lambda m, args, out: feats.update(x=args[0], w=args[1], out=out))
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const")
    # No image path from the lower blocks: the output is exactly the last block's ToRGB, using the last w.
    assert torch.equal(img, feats["out"]) and torch.equal(feats["w"], ws[:, -1])


def test_resnet_generator_block_sums_skip_and_main_path_with_sqrt_half(tiny_cfgs):
    G = _g(tiny_cfgs, res=32, architecture="resnet", conv_clamp=None).eval()
    block = G.synthesis.b16
    with torch.no_grad():
        x = torch.randn(2, 16, 8, 8)
        ws = torch.randn(2, block.num_conv + block.num_torgb, G.w_dim)
        assert block.num_torgb == 0  # not the last block
        out, img = block(x, None, ws, noise_mode="none")
        main = block.conv1(block.conv0(x, ws[:, 0], noise_mode="none"), ws[:, 1], noise_mode="none")
        # The 1x1 skip conv upsamples 2x with the FIR filter, has no bias and no activation (StyleGAN2 Fig. 7c).
        skip = block.skip(x)
        assert skip.shape == (2, 16, 16, 16) and img is None
        torch.testing.assert_close(out, math.sqrt(0.5) * (skip + main), rtol=1e-5, atol=1e-6)


def test_skip_discriminator_reads_the_downsampled_image_at_every_block(tiny_cfgs):
    D = _d(tiny_cfgs, res=32, architecture="skip").eval()
    seen = {}
    for r in (32, 16, 8, 4):
        getattr(D, f"b{r}").fromrgb.register_forward_hook(lambda m, args, out, r=r: seen.update({r: args[0]}))
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        D(img)
    expected = img
    for r in (32, 16, 8, 4):
        torch.testing.assert_close(seen[r], expected, rtol=0, atol=0)
        expected = downsample2d(expected, D.b32.resample_filter)
    # Each FromRGB output is added to the block's input features: zeroing the lower ones changes D.
    with torch.no_grad():
        before = D(img)
        D.b8.fromrgb.weight.zero_()
        D.b8.fromrgb.bias.zero_()
        assert not torch.allclose(before, D(img))


@pytest.mark.parametrize("arch", D_ARCHS)
def test_freeze_d_layer_names_cover_every_parameter(tiny_cfgs, arch):
    D = _d(tiny_cfgs, res=32, architecture=arch)
    names = D.layer_names()
    assert names[0] == "b32.fromrgb" and names[-1] == "b4.out"
    for n, _ in D.named_parameters():
        assert n.startswith("mapping.") or any(n.startswith(p + ".") for p in names), n
    if arch == "skip":  # fromrgb, conv0, conv1 per block, as the official layer count for Freeze-D
        assert names[:6] == ["b32.fromrgb", "b32.conv0", "b32.conv1", "b16.fromrgb", "b16.conv0", "b16.conv1"]


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


# Counts of the official StyleGAN2-ADA networks with each architecture (paper256: channel_base 16384,
# 8 mapping layers; cifar: channel_base 32768, 2 mapping layers; unconditional RGB).
@pytest.mark.parametrize("preset,res,arch,g_params,d_params", [
    ("paper256", 256, "skip", 24_767_458, 23_052_353),
    ("paper256", 256, "orig", 23_512_528, 23_042_625),
    ("paper256", 256, "resnet", 24_470_992, 24_001_089),
    ("cifar", 32, "skip", 19_947_539, 20_726_785),
    ("cifar", 32, "orig", 19_154_954, 20_720_641),
    ("cifar", 32, "resnet", 19_941_386, 21_507_073),
])
def test_parameter_counts_per_architecture(preset, res, arch, g_params, d_params):
    import dataclasses

    from adagan.presets import resolve

    cfg = resolve(preset, res)
    G = Generator(dataclasses.replace(cfg.G, architecture=arch))
    D = Discriminator(dataclasses.replace(cfg.D, architecture=arch))
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
    assert G.cfg.architecture == "skip" and G.synthesis.architecture == "skip"
    assert build_networks("paper256", 256)[1].cfg.architecture == "resnet"


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


@pytest.mark.parametrize("arch", ["skip", "resnet"])
def test_channels_last_matches_contiguous(tiny_cfgs, arch):
    """`channels_last` (a CUDA option of training) changes only the memory layout: outputs and gradients of
    G and D equal the contiguous networks' on CPU."""
    tiny_g, tiny_d = tiny_cfgs
    torch.manual_seed(0)
    G = Generator(tiny_g(res=16, architecture=arch))
    D = Discriminator(tiny_d(res=16, architecture="resnet" if arch == "skip" else "orig"))
    G2 = copy.deepcopy(G).to(memory_format=torch.channels_last)
    D2 = copy.deepcopy(D).to(memory_format=torch.channels_last)
    z = torch.randn(4, G.z_dim)
    outs = []
    for g, d in ((G, D), (G2, D2)):
        img = g(z, None, noise_mode="const")
        logits = d(img, None)
        logits.sum().backward()
        outs.append((img.detach(), logits.detach(), [p.grad.clone() for p in (*g.parameters(), *d.parameters())]))
    (img1, l1, g1), (img2, l2, g2) = outs
    torch.testing.assert_close(img2, img1, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(l2, l1, rtol=1e-4, atol=1e-5)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(b.contiguous(), a, rtol=1e-3, atol=1e-5)
