"""The README's figure: the first rows of several grids stacked, each labelled (docs/results.md "Transfer learning").

    python benchmarks/grid_figure.py --out docs/results/smileys-transfer-40kimg.png \\
        "training images=transfer/all-ada/reals.png" \\
        "adagan train --aug noaug --kimg 40 (transfer, no augmentation)=transfer/all-noaug/fakes000040.png" \\
        "adagan train --kimg 40 (transfer + ADA, the default)=transfer/all-ada/fakes000040.png"

Each LABEL=GRID takes the first `--rows` rows of res x res cells from GRID (a `reals.png` or
`fakesNNNNNN.png` of a run: cells without padding), enlarged `--scale` times without smoothing, with
LABEL wrapped to the left of them. A label may not contain '='.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

LABEL_WIDTH = 344  # pixels left of the grids
GAP = 12  # pixels between two panels
FONT_SIZE = 20


def panel(path: Path, res: int, rows: int, scale: int):
    """The first `rows` rows of cells of one grid PNG, enlarged `scale` times (nearest neighbour)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width < res or im.height < rows * res:
            raise ValueError(f"{path}: {im.width}x{im.height} holds fewer than {rows} rows of {res}x{res} cells")
        top = im.crop((0, 0, im.width // res * res, rows * res))
    return top.resize((top.width * scale, top.height * scale), Image.NEAREST)


def figure(panels: list[tuple[str, Path]], res: int, rows: int, scale: int):
    """One RGB image: each panel's rows on the right, its label wrapped on the left, white between them."""
    from PIL import Image, ImageDraw, ImageFont

    images = [panel(path, res, rows, scale) for _, path in panels]
    width = LABEL_WIDTH + max(im.width for im in images)
    height = sum(im.height for im in images) + GAP * (len(images) - 1)
    out = Image.new("RGB", (width, height), "white")
    draw, font = ImageDraw.Draw(out), ImageFont.load_default(size=FONT_SIZE)
    y = 0
    for (label, _), im in zip(panels, images, strict=True):
        out.paste(im, (LABEL_WIDTH, y))
        draw.multiline_text((8, y + 8), "\n".join(textwrap.wrap(label, 26)), fill="black", font=font, spacing=6)
        y += im.height + GAP
    return out


def parse_panel(spec: str) -> tuple[str, Path]:
    label, sep, path = spec.rpartition("=")
    if not sep or not label or not path:
        raise ValueError(f"{spec!r}: expected LABEL=GRID.png, e.g. 'training images=runs/NAME/reals.png'")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file (a grid PNG: runs/NAME/reals.png or fakesNNNNNN.png)")
    return label, Path(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("panels", nargs="+", metavar="LABEL=GRID", help="a label and a grid PNG, top to bottom")
    ap.add_argument("--out", required=True, help="the PNG to write")
    ap.add_argument("--res", type=int, default=32, help="cell size of the grids in pixels (default 32)")
    ap.add_argument("--rows", type=int, default=4, help="rows of cells taken from each grid (default 4)")
    ap.add_argument("--scale", type=int, default=2, help="enlargement, nearest neighbour (default 2)")
    args = ap.parse_args(argv)
    from adagan.errors import AdaganError
    from adagan.files import atomic_write

    try:
        panels = [parse_panel(spec) for spec in args.panels]
        img = figure(panels, args.res, args.rows, args.scale)
        atomic_write(args.out, lambda tmp: img.save(tmp, format="PNG"))
    except (ValueError, OSError, AdaganError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({img.width}x{img.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
