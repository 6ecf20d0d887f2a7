"""`adagan project`: find the latent that reproduces a photo (StyleGAN2's projector)."""

from pathlib import Path

import click

from adagan.cli import CTX, network_option, threads_option, use_threads
from adagan.limits import check_options, check_work


@click.command(context_settings=CTX)
@network_option()
@click.option("--target", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="IMAGE",
              help="Image to reproduce; centre-cropped to a square and resized to the network's resolution.")
@click.option("--steps", "--num-steps", "steps", type=int, default=1000, show_default=True,
              help="Optimisation steps (--num-steps: the official projector.py's name).")
@click.option("--outdir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--save-video", type=click.BOOL, is_flag=False, flag_value=True, default=False, metavar="[BOOL]",
              help="Also write proj.mp4: target | projection at every step (--save-video or --save-video=1; "
                   "off by default, unlike the official projector.py, as it needs the video extra).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the w statistics and the noise maps.")
@click.option("--lpips", "lpips_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="LPIPS-VGG16 weights file (default: from `adagan weights fetch lpips-vgg16`).")
@click.option("--w-avg-samples", type=int, default=10000, show_default=True,
              help="Latents sampled to find the mean and spread of w.")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when available).")
@click.option("--yes", is_flag=True, help="Go ahead with more than 10,000 steps or 100,000 w samples "
                                          "(docs/limits.md).")
@threads_option
def cli(network, target, steps, outdir, save_video, seed, lpips_path, w_avg_samples, device, yes, threads):
    """Project an image into the generator's W space.

    Writes target.png (the cropped, resized target), proj.png (the projection) and projected_w.npz
    (key 'w', shape [1, num_ws, w_dim]), which `adagan generate --projected-w` renders.

    \b
    Example:
      adagan project --network snapshot.safetensors --target photo.jpg --steps 1000 --outdir proj
    """
    import numpy as np

    from adagan import inference as inf
    from adagan.metrics import features

    check_options("project", steps=steps, w_avg_samples=w_avg_samples, seed=seed)
    check_work("steps", steps, yes)
    check_work("w_avg_samples", w_avg_samples, yes)
    dev = inf.resolve_device(device)
    use_threads(threads, dev)
    G = inf.load_generator(network, dev)
    target_u8 = inf.load_image(target, G.img_resolution, G.img_channels)
    lpips = features.load_lpips(device=dev, path=lpips_path)
    w_steps, losses = inf.project(G, target_u8, steps=steps, lpips=lpips, device=dev, seed=seed,
                                  w_avg_samples=w_avg_samples, progress=True)
    outdir.mkdir(parents=True, exist_ok=True)
    target_img = target_u8.transpose(1, 2, 0)
    inf.save_image(target_img, outdir / "target.png")
    final = w_steps[-1:]
    proj = inf.to_uint8(inf.synthesize(G, final.to(dev), noise_mode="const"))[0]
    inf.save_image(proj, outdir / "proj.png")
    np.savez(outdir / "projected_w.npz", w=final.numpy().astype(np.float32))
    msg = f"Wrote target.png, proj.png and projected_w.npz to {outdir} (final LPIPS {losses[-1]:.4f})"
    if save_video:  # one batch of frames at a time
        def frames():
            for i in range(0, len(w_steps), 16):
                f = inf.to_uint8(inf.synthesize(G, w_steps[i: i + 16].to(dev), noise_mode="const"))
                yield np.concatenate([np.broadcast_to(target_img, f.shape), f], axis=2)

        inf.save_video(frames(), outdir / "proj.mp4", fps=60)
        msg += " and proj.mp4"
    click.echo(msg)
