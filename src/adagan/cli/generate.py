"""`adagan generate`: one PNG per seed (and optionally a grid), or render projected ws."""

from pathlib import Path

import click

from adagan.cli import CTX, class_option, device_options, network_option, use_threads
from adagan.errors import ConfigError
from adagan.limits import check_options, check_work

MAX_GRID = 1024  # --grid holds every image in memory
MAX_PROJECTED = 10_000  # ws one --projected-w file may hold


@click.command(context_settings=CTX)
@network_option("Network file (.safetensors) from `adagan train` or `adagan import-official`")
@click.option("--seeds", default=None, metavar="LIST", help="Seeds, e.g. 0-99 or 1,5,9 (the same seed always "
                                                            "gives the same image).")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True,
              help="Truncation psi: < 1 trades variety for typical-looking images (0.7 is common).")
@class_option
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True,
              help="Per-pixel noise: the stored maps, fresh random maps, or none.")
@click.option("--outdir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--grid", is_flag=True, help="Also write all images as one grid.png.")
@click.option("--projected-w", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE.npz",
              help="Render the ws in this file (key 'w', from `adagan project`) instead of seeds.")
@click.option("--batch", type=int, default=16, show_default=True, help="Images per forward pass.")
@device_options("10,000 images")
def cli(network, seeds, truncation_psi, class_idx, noise_mode, outdir, grid, projected_w, batch, device, yes,
        threads):
    """Generate images from a trained generator.

    \b
    Examples:
      adagan generate --network snapshot.safetensors --seeds 0-15 --trunc 0.7 --outdir out --grid
      adagan generate --network snapshot.safetensors --projected-w proj/projected_w.npz --outdir out
      adagan generate --network afhqcat --seeds 0-7 --trunc 0.7 --outdir cats   # downloaded once
    """
    from adagan import inference as inf

    if (seeds is None) == (projected_w is None):
        raise ConfigError("pass either --seeds (e.g. 0-99) or --projected-w FILE.npz")
    check_options("generate", trunc=truncation_psi, batch=batch)
    seed_list = inf.seed_ranges(seeds) if seeds is not None else None  # lazy: counted, not built
    if seed_list is not None:
        if not len(seed_list):
            raise ConfigError("--seeds is empty")
        check_work("images", len(seed_list), yes, " (they are written one batch at a time)")
        if grid and len(seed_list) > MAX_GRID:
            raise ConfigError(f"--grid holds at most {MAX_GRID:,} images (all in memory); drop --grid or ask for "
                              "fewer seeds")
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"--outdir {outdir} is a file; give a folder")
    G = inf.load_generator(network, device)
    use_threads(threads, next(G.parameters()).device)
    ws = _read_projected_w(projected_w, G) if projected_w is not None else None
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create --outdir {outdir} ({e.strerror or e})") from None
    if ws is not None:
        batches = []
        for i in range(0, len(ws), batch):
            imgs = inf.to_uint8(inf.synthesize(G, ws[i: i + batch].to(next(G.parameters()).device),
                                               noise_mode=noise_mode, batch=batch))
            batches.append((list(range(i, i + len(imgs))), imgs))
        name = "proj{:02d}.png"
    else:
        batches = inf.generate_batches(G, seed_list, c=class_idx, truncation_psi=truncation_psi,
                                       noise_mode=noise_mode, batch=batch, progress=len(seed_list) > batch)
        name = "seed{:04d}.png"
    kept, count = [], 0
    for keys, images in batches:  # written as they are made: memory holds one batch (and the grid's images)
        for key, img in zip(keys, images, strict=True):
            inf.save_image(img, outdir / name.format(key))
        count += len(images)
        if grid:
            kept.append(images)
    msg = f"Wrote {count} images to {outdir}"
    if grid:
        import numpy as np

        inf.save_grid(np.concatenate(kept), outdir / "grid.png")
        msg += " and grid.png"
    click.echo(msg)


def _read_projected_w(path: Path, G):
    import numpy as np
    import torch

    if not path.exists():
        raise ConfigError(f"--projected-w file not found: {path}")
    if not path.is_file():
        raise ConfigError(f"--projected-w {path} is not a regular file")
    w = _read_npz_array(path, "w", max_items=MAX_PROJECTED * G.num_ws * G.w_dim)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3 or w.shape[1:] != (G.num_ws, G.w_dim):
        raise ConfigError(f"{path}: w has shape {list(w.shape)}, this network needs [N, {G.num_ws}, {G.w_dim}]")
    if w.dtype.kind != "f" or not np.isfinite(w).all():
        raise ConfigError(f"{path}: w must hold finite floating-point numbers")
    return torch.from_numpy(np.asarray(w, dtype=np.float32))


def _read_npz_array(path: Path, key: str, max_items: int):
    """Array `key` of an .npz, after checking its declared shape against the bytes stored (no pickles)."""
    import zipfile

    import numpy as np

    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(f"{key}.npy") if f"{key}.npy" in zf.namelist() else None
            if info is None:
                raise ConfigError(f"{path} has no array {key!r} (write it with `adagan project`)")
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(f)
                count = int(np.prod(shape, dtype=np.float64)) if shape else 1
                if dtype.hasobject or count > max_items or count * dtype.itemsize > info.file_size:
                    raise ConfigError(f"{path}: {key} declares shape {list(shape)} of {dtype}, which it does not "
                                      "hold (or is not plain numbers)")
            with np.load(path, allow_pickle=False) as data:
                return data[key]
    except ConfigError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise ConfigError(f"{path} is not a readable .npz file ({str(e)[:200]})") from None
