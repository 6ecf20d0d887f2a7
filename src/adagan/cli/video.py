"""`adagan video`: a looping latent walk through seeds, interpolated in W."""

from pathlib import Path

import click

from adagan.cli import CTX, threads_option, use_threads
from adagan.errors import ConfigError


@click.command(context_settings=CTX)
@click.option("--network", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Network file (.safetensors).")
@click.option("--seeds", required=True, metavar="LIST", help="Key seeds, visited in order, e.g. 0,5,9.")
@click.option("--frames-per-seed", type=int, default=60, show_default=True, help="Frames from one seed to the next.")
@click.option("--fps", type=float, default=30, show_default=True)
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--class", "class_idx", type=int, default=None, metavar="K", help="Class for a conditional network.")
@click.option("--noise-mode", type=click.Choice(["const", "none"]), default="const", show_default=True,
              help="const keeps the noise fixed so only the latent moves.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("walk.mp4"), show_default=True,
              help="Video file: .mp4 (needs imageio-ffmpeg) or .gif.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when available).")
@threads_option
def cli(network, seeds, frames_per_seed, fps, truncation_psi, class_idx, noise_mode, out, device, threads):
    """Write a smooth, looping walk through the seeds' latents (cubic interpolation in W).

    \b
    Example:
      adagan video --network snapshot.safetensors --seeds 0,5,9 --frames-per-seed 60 --out walk.mp4
    """
    from adagan import inference as inf

    if out.suffix.lower() not in (".mp4", ".gif"):
        raise ConfigError(f"--out {out} must end in .mp4 or .gif")
    if frames_per_seed < 1:
        raise ConfigError("--frames-per-seed must be at least 1")
    if not fps > 0:
        raise ConfigError("--fps must be positive")
    seed_list = inf.parse_range(seeds)
    G = inf.load_generator(network, device)
    use_threads(threads, next(G.parameters()).device)
    frames = inf.interpolate(G, seed_list, frames_per_seed, c=class_idx, truncation_psi=truncation_psi,
                             noise_mode=noise_mode, progress=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    inf.save_video(frames, out, fps=fps)
    click.echo(f"Wrote {out} ({len(frames)} frames at {fps:g} fps)")
