"""`adagan video`: a looping latent walk through seeds, interpolated in W."""

from pathlib import Path

import click

from adagan.cli import CTX, class_option, device_options, network_option, use_threads
from adagan.errors import ConfigError
from adagan.limits import check_options, check_work

MAX_GIF_BYTES = 2**30  # a GIF is assembled in memory; longer videos go to .mp4, which is streamed
MAX_KEYS = 10_000  # key seeds: their ws are held in memory for the whole walk


@click.command(context_settings=CTX)
@network_option()
@click.option("--seeds", required=True, metavar="LIST", help="Key seeds, visited in order, e.g. 0,5,9.")
@click.option("--frames-per-seed", type=int, default=60, show_default=True, help="Frames from one seed to the next.")
@click.option("--fps", type=float, default=30, show_default=True)
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@class_option
@click.option("--noise-mode", type=click.Choice(["const", "none"]), default="const", show_default=True,
              help="const keeps the noise fixed so only the latent moves.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("walk.mp4"), show_default=True,
              help="Video file: .mp4 (needs imageio-ffmpeg) or .gif.")
@device_options("10,000 frames")
def cli(network, seeds, frames_per_seed, fps, truncation_psi, class_idx, noise_mode, out, device, yes, threads):
    """Write a smooth, looping walk through the seeds' latents (cubic interpolation in W).

    \b
    Example:
      adagan video --network snapshot.safetensors --seeds 0,5,9 --frames-per-seed 60 --out walk.mp4
    """
    from adagan import inference as inf

    if out.suffix.lower() not in (".mp4", ".gif"):
        raise ConfigError(f"--out {out} must end in .mp4 or .gif")
    check_options("video", frames_per_seed=frames_per_seed, fps=fps, trunc=truncation_psi)
    seed_list = inf.seed_ranges(seeds)
    if not len(seed_list):
        raise ConfigError("--seeds is empty")
    if len(seed_list) > MAX_KEYS:
        raise ConfigError(f"--seeds names {len(seed_list):,} key seeds; a walk goes through at most {MAX_KEYS:,}")
    total = len(seed_list) * frames_per_seed
    check_work("frames", total, yes, " (they are written one batch at a time)")
    G = inf.load_generator(network, device)
    use_threads(threads, next(G.parameters()).device)
    if out.suffix.lower() == ".gif" and total * G.img_resolution**2 * 3 > MAX_GIF_BYTES:
        raise ConfigError(f"a GIF of {total:,} frames at {G.img_resolution}px would need more than "
                          f"{MAX_GIF_BYTES // 2**20:,} MB in memory; write an .mp4 (streamed) or fewer frames")
    frames = inf.interpolate_batches(G, list(seed_list), frames_per_seed, c=class_idx, truncation_psi=truncation_psi,
                                     noise_mode=noise_mode, progress=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    inf.save_video(frames, out, fps=fps)
    click.echo(f"Wrote {out} ({total} frames at {fps:g} fps)")
