"""The fast Inception paths: the fid-helper TorchScript graph rebuilt as a plain module with the batch
norms folded into the convolutions (`FoldedGraphNet`), and that module exported to ONNX and run by ONNX
Runtime on the CPU (`_onnx_runner`). `fast_inception` picks the fastest available path; its features
agree with the file's own forward to FAST_TOLERANCE (checked when the ONNX file is written; docs/metrics.md).
metrics/features.py's InceptionDetector uses it.
"""

from __future__ import annotations

import copy
import importlib.util
import warnings

import torch
import torch.nn.functional as F

from adagan.errors import ConfigError
from adagan.files import atomic_write
from adagan.metrics import weights as W

INCEPTION_SIZE = 299  # the side of the network's input
FAST_TOLERANCE = 1e-4  # max abs difference of a fast path's features from the file's own forward

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
    made = []

    def write(tmp):  # the file is kept only when its features match the TorchScript file's
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
        made.append(run)

    atomic_write(path, write)
    return made[0]


def fast_inception(net, weights_id: str, impl: str):
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
