"""`adagan export`: the generator as ONNX, torch.export (.pt2) and/or TorchScript."""

from pathlib import Path

import click

from adagan.cli import CTX, network_option
from adagan.errors import ConfigError
from adagan.limits import check_options


@click.command(context_settings=CTX)
@network_option()
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="G.onnx", help="Write an ONNX model (inputs z, c, psi; output img).")
@click.option("--pt2", "pt2_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="G.pt2", help="Write a torch.export program: torch.export.load(path).module()(z, c, psi).")
@click.option("--torchscript", "ts_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="G.pt", help="Write a TorchScript module: torch.jit.load(path)(z, c, psi) "
                                   "(TorchScript is deprecated in PyTorch: prefer --pt2).")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset version.")
def cli(network, onnx_path, pt2_path, ts_path, opset):
    """Export the generator (G_ema) so it runs without adagan.

    The model takes z [N, z_dim], c [N, c_dim] one-hot labels ([N, 1], ignored, when unconditional) and
    psi [1] (truncation; 1 = none) and returns images float [N, C, H, W] in about [-1, 1], with the
    stored const noise.

    \b
    Example:
      adagan export --network snapshot.safetensors --onnx G.onnx --pt2 G.pt2
    """
    from adagan.export import export_onnx, export_pt2, export_torchscript
    from adagan.inference import load_generator

    if onnx_path is None and pt2_path is None and ts_path is None:
        raise ConfigError("nothing to do: pass --onnx G.onnx, --pt2 G.pt2 and/or --torchscript G.pt")
    check_options("export", opset=opset if onnx_path is not None else None)
    G = load_generator(network, "cpu")
    jobs = [(path, write) for path, write in ((onnx_path, lambda p: export_onnx(G, p, opset=opset)),
                                               (pt2_path, lambda p: export_pt2(G, p)),
                                               (ts_path, lambda p: export_torchscript(G, p))) if path is not None]
    for path, write in jobs:
        click.echo(f"Writing {path} ...", err=True)  # tracing a 1024-px network takes a while
        write(path)
    click.echo(f"Wrote {', '.join(str(path) for path, _ in jobs)} "
               f"(inputs z [N, {G.z_dim}], c [N, {max(G.c_dim, 1)}], psi [1]; "
               f"output img [N, {G.img_channels}, {G.img_resolution}, {G.img_resolution}])")
