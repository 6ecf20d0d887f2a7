"""`adagan dataset`: turn a folder / zip / MNIST / CIFAR-10 / built-in source into a training zip."""

import click

from adagan.cli import CTX


@click.command(context_settings=CTX)
@click.option("--source", required=True, metavar="SRC",
              help="Folder of images (recursive; sub-folders = classes), a .zip, MNIST idx file(s), the "
                   "CIFAR-10 python tarball, or builtin:twemoji[@64].")
@click.option("--dest", required=True, metavar="DEST.zip", help="Output zip (written atomically).")
@click.option("--resolution", type=int, default=None, metavar="N",
              help="Output size NxN, a power of two from 16 to 1024. Default: the largest power of two that 90% of "
                   "the images reach (32 for MNIST, CIFAR-10 and builtin:twemoji).")
@click.option("--transform", type=click.Choice(["center-crop", "center-crop-wide", "pad"]),
              default="center-crop", show_default=True,
              help="How non-square images become square: crop the centre, crop a centred 2:1 strip and "
                   "letterbox it, or pad with the background colour.")
@click.option("--resize-filter", type=click.Choice(["lanczos", "box"]), default="lanczos", show_default=True)
@click.option("--channels", type=click.Choice(["1", "3", "4"]), default=None,
              help="1 = grayscale, 3 = RGB, 4 = RGB + alpha (keeps transparency). Default: 1 if every image "
                   "is grayscale, else 3.")
@click.option("--background", default="white", show_default=True, metavar="COLOR",
              help="Colour that transparency is composited on and padding is filled with: white, black, "
                   "gray or #rrggbb.")
@click.option("--labels", type=click.Choice(["auto", "subfolders", "dataset.json", "none"]), default="auto",
              show_default=True, help="auto: dataset.json at the source root if present, else sub-folders "
                                      "when every image is in a class folder, else none.")
@click.option("--upscale", is_flag=True, help="Enlarge images smaller than the resolution instead of "
                                               "skipping them.")
@click.option("--duplicates", type=click.Choice(["skip", "keep"]), default=None,
              help="Images with the same output pixels as an earlier one. Default: skip (keep for MNIST, "
                   "CIFAR-10 and builtin, so their counts match the benchmarks).")
@click.option("--max-images", type=int, default=None, metavar="N", help="Stop after writing N images.")
@click.option("--max-pixels", type=int, default=100_000_000, show_default=True, metavar="N",
              help="Skip images with more pixels than this (decompression bombs).")
@click.option("--workers", type=int, default=None, help="Decoding threads (default: CPU count, at most 8).")
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@click.option("-v", "--verbose", is_flag=True, help="List every skipped file and duplicate.")
def cli(source, dest, resolution, transform, resize_filter, channels, background, labels, upscale, duplicates,
        max_images, max_pixels, workers, force, verbose):
    """Create a training dataset: a zip of same-size PNGs plus dataset.json (labels, class names, licence).

    Unreadable, too-small, non-image and duplicate files are skipped and counted; the report says
    which and why. RGBA is composited on --background, palette/16-bit/CMYK images are converted,
    EXIF rotation is applied.

    \b
    Examples:
      adagan dataset --source ~/Pictures/cats --dest cats.zip --resolution 64
      adagan dataset --source photos/ --dest photos.zip --transform pad --labels subfolders
      adagan dataset --source train-images-idx3-ubyte.gz --dest mnist.zip
      adagan dataset --source cifar-10-python.tar.gz --dest cifar10.zip
      adagan dataset --source builtin:twemoji --dest tw.zip --resolution 64
    """
    from adagan.data.prepare import prepare_dataset
    from adagan.limits import check_options

    check_options("dataset", resolution=resolution, workers=workers, max_images=max_images, max_pixels=max_pixels)

    def note(msg: str) -> None:
        click.echo(msg, err=True)

    report = prepare_dataset(source, dest, resolution=resolution, transform=transform,
                             resize_filter=resize_filter, channels=int(channels) if channels else None,
                             labels=labels, max_images=max_images, background=background, upscale=upscale,
                             duplicates=duplicates, max_pixels=max_pixels, overwrite=force, workers=workers,
                             progress=True, log=note)
    click.echo(report.summary(verbose=verbose))
