"""`adagan generate`: one PNG per seed (and optionally a grid), or render projected ws."""

from pathlib import Path

import click

from adagan.cli import CTX, threads_option, use_threads
from adagan.errors import ConfigError


@click.command(context_settings=CTX)
@click.option("--network", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Network file (.safetensors) from `adagan train` or `adagan import-official`.")
@click.option("--seeds", default=None, metavar="LIST", help="Seeds, e.g. 0-99 or 1,5,9 (the same seed always "
                                                            "gives the same image).")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True,
              help="Truncation psi: < 1 trades variety for typical-looking images (0.7 is common).")
@click.option("--class", "class_idx", type=int, default=None, metavar="K", help="Class for a conditional network.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True,
              help="Per-pixel noise: the stored maps, fresh random maps, or none.")
@click.option("--outdir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--grid", is_flag=True, help="Also write all images as one grid.png.")
@click.option("--projected-w", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE.npz",
              help="Render the ws in this file (key 'w', from `adagan project`) instead of seeds.")
@click.option("--batch", type=int, default=16, show_default=True, help="Images per forward pass.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when available).")
@threads_option
def cli(network, seeds, truncation_psi, class_idx, noise_mode, outdir, grid, projected_w, batch, device,
        threads):
    """Generate images from a trained generator.

    \b
    Examples:
      adagan generate --network snapshot.safetensors --seeds 0-15 --trunc 0.7 --outdir out --grid
      adagan generate --network snapshot.safetensors --projected-w proj/projected_w.npz --outdir out
    """
    from adagan import inference as inf

    if (seeds is None) == (projected_w is None):
        raise ConfigError("pass either --seeds (e.g. 0-99) or --projected-w FILE.npz")
    if batch < 1:
        raise ConfigError("--batch must be at least 1")
    seed_list = inf.parse_range(seeds) if seeds is not None else None
    if seed_list is not None and not seed_list:
        raise ConfigError("--seeds is empty")
    G = inf.load_generator(network, device)
    use_threads(threads, next(G.parameters()).device)
    outdir.mkdir(parents=True, exist_ok=True)
    if projected_w is not None:
        ws = _read_projected_w(projected_w, G)
        images = inf.to_uint8(inf.synthesize(G, ws.to(next(G.parameters()).device), noise_mode=noise_mode,
                                             batch=batch))
        names = [f"proj{i:02d}.png" for i in range(len(images))]
    else:
        images = inf.generate(G, seed_list, c=class_idx, truncation_psi=truncation_psi, noise_mode=noise_mode,
                              batch=batch, progress=len(seed_list) > batch)
        names = [f"seed{s:04d}.png" for s in seed_list]
    for img, name in zip(images, names, strict=True):
        inf.save_image(img, outdir / name)
    msg = f"Wrote {len(images)} images to {outdir}"
    if grid:
        inf.save_grid(images, outdir / "grid.png")
        msg += " and grid.png"
    click.echo(msg)


def _read_projected_w(path: Path, G):
    import numpy as np
    import torch

    if not path.is_file():
        raise ConfigError(f"--projected-w file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "w" not in data:
                raise ConfigError(f"{path} has no array 'w' (write it with `adagan project`)")
            w = data["w"]
    except (ValueError, OSError) as e:
        raise ConfigError(f"{path} is not a readable .npz file ({e})") from None
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3 or w.shape[1:] != (G.num_ws, G.w_dim):
        raise ConfigError(f"{path}: w has shape {list(w.shape)}, this network needs [N, {G.num_ws}, {G.w_dim}]")
    return torch.from_numpy(np.asarray(w, dtype=np.float32))
