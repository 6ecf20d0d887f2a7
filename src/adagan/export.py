"""Export a generator for use without adagan: ONNX (onnxruntime, any language), torch.export (.pt2,
PyTorch's successor of TorchScript) and TorchScript (deprecated in PyTorch, still loads everywhere).

The exported model maps (z [N, z_dim], c [N, c_dim or 1], psi [1]) to images float [N, C, H, W] in about
[-1, 1] (map to uint8 with `x * 127.5 + 128`, clipped). Noise is the stored `const` noise, so the output
is a pure function of the inputs. For an unconditional network c is a placeholder [N, 1] that is ignored.
Modulated convs run in the non-fused form (shared conv, scaled activations), which StyleGAN2 shows
is the same maths as the fused grouped conv and which exports with a dynamic batch size.
"""

from __future__ import annotations

import io
import os

import torch

from adagan.errors import ConfigError
from adagan.files import atomic_write, write_bytes


class ExportableGenerator(torch.nn.Module):
    """G(z, c, psi) with const noise and truncation `w = w_avg + psi * (w - w_avg)` on every w."""

    def __init__(self, G):
        super().__init__()
        self.G = G
        self.z_dim, self.c_dim = G.z_dim, G.c_dim

    def forward(self, z: torch.Tensor, c: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        ws = self.G.mapping(z, c if self.c_dim else None)
        ws = self.G.mapping.w_avg.lerp(ws, psi.reshape(-1, 1, 1).to(ws.dtype))
        img = self.G.synthesis(ws, noise_mode="const", force_fp32=True, fused_modconv=False)
        if not self.c_dim:
            img = img + 0 * c.sum()  # keeps the placeholder input in the graph: one signature for all networks
        return img


def example_inputs(G, n: int = 2, psi: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    z = torch.randn([n, G.z_dim], generator=g)
    c = torch.zeros([n, max(G.c_dim, 1)])
    if G.c_dim:
        c[:, 0] = 1
    return z, c, torch.tensor([psi], dtype=torch.float32)


def _prepare(G) -> ExportableGenerator:
    return ExportableGenerator(G).to("cpu").eval().requires_grad_(False).float()


def export_onnx(G, path: str | os.PathLike, opset: int = 17) -> None:
    """Write an ONNX model with inputs z, c, psi and output img; the batch size is dynamic."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install 'adagan[export]'") from None
    import warnings

    model = _prepare(G)
    inputs = example_inputs(G)

    def write(tmp):
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about shape asserts being constant
            torch.onnx.export(model, inputs, tmp, dynamo=False, input_names=["z", "c", "psi"],
                              output_names=["img"], opset_version=opset,
                              dynamic_axes={"z": {0: "N"}, "c": {0: "N"}, "img": {0: "N"}})

    atomic_write(path, write)


def export_torchscript(G, path: str | os.PathLike) -> None:
    """Write a traced TorchScript module: `torch.jit.load(path)(z, c, psi)`; the batch size is dynamic."""
    import warnings

    model = _prepare(G)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example_inputs(G), check_trace=False)

    def write(tmp):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated but still loads everywhere
            torch.jit.save(traced, tmp)

    atomic_write(path, write)


def export_pt2(G, path: str | os.PathLike) -> None:
    """Write a torch.export program: `torch.export.load(path).module()(z, c, psi)`; the batch size is dynamic.

    torch.export is PyTorch's replacement for TorchScript; the file holds the graph and the weights, and
    loading it runs no Python code from the file.
    """
    model = _prepare(G)
    batch = torch.export.Dim("N", min=1, max=65536)
    with torch.no_grad():
        program = torch.export.export(model, example_inputs(G), strict=False,
                                      dynamic_shapes={"z": {0: batch}, "c": {0: batch}, "psi": None})
    buffer = io.BytesIO()  # torch.export.save warns about a file name that does not end in .pt2 (the temporary's)
    torch.export.save(program, buffer)
    write_bytes(path, buffer.getvalue())
