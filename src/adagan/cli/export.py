"""`adagan export`: the generator as ONNX and/or TorchScript."""

from pathlib import Path

import click

from adagan.cli import CTX, network_option
from adagan.errors import ConfigError
from adagan.limits import check_options


@click.command(context_settings=CTX)
@network_option()
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="G.onnx", help="Write an ONNX model (inputs z, c, psi; output img).")
@click.option("--torchscript", "ts_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="G.pt", help="Write a TorchScript module: torch.jit.load(path)(z, c, psi).")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset version.")
def cli(network, onnx_path, ts_path, opset):
    """Export the generator (G_ema) so it runs without adagan.

    The model takes z [N, z_dim], c [N, c_dim] one-hot labels ([N, 1], ignored, when unconditional) and
    psi [1] (truncation; 1 = none) and returns images float [N, C, H, W] in about [-1, 1], with the
    stored const noise.

    \b
    Example:
      adagan export --network snapshot.safetensors --onnx G.onnx --torchscript G.pt
    """
    from adagan.export import export_onnx, export_torchscript
    from adagan.inference import load_generator

    if onnx_path is None and ts_path is None:
        raise ConfigError("nothing to do: pass --onnx G.onnx and/or --torchscript G.pt")
    check_options("export", opset=opset if onnx_path is not None else None)
    G = load_generator(network, "cpu")
    done = []
    if onnx_path is not None:
        export_onnx(G, onnx_path, opset=opset)
        done.append(str(onnx_path))
    if ts_path is not None:
        export_torchscript(G, ts_path)
        done.append(str(ts_path))
    click.echo(f"Wrote {' and '.join(done)} (inputs z [N, {G.z_dim}], c [N, {max(G.c_dim, 1)}], psi [1]; "
               f"output img [N, {G.img_channels}, {G.img_resolution}, {G.img_resolution}])")
