"""Decode, normalise and reshape one image: the pixel rules shared by the dataset tool and the loader.

Every image, whatever its file format and mode, ends up as a uint8 HWC array with 1 (gray),
3 (RGB) or 4 (RGBA) channels:

- EXIF orientation is applied (phones store portrait photos as rotated landscape + a tag).
- Palette, 1-bit, 16-bit and CMYK/YCbCr/LAB images are converted to L or RGB; 16-bit gray keeps
  its range (x / 257), not its low byte.
- Transparency (RGBA, LA, palette with a transparent index) is composited over a background colour
  (white by default), unless 4 channels are asked for.
- Geometry: `center-crop` (largest centred square), `center-crop-wide` (centred 2:1 crop, letterboxed
  into the square) or `pad` (whole image centred on a square of background colour); then one resize
  with Lanczos or box filtering. Upscaling happens only when allowed; otherwise the image is "too small".

Problems with a single file raise `Skip(reason, detail)`; the caller counts it and moves on.
"""

from __future__ import annotations

import io
import warnings
from pathlib import PurePosixPath

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from adagan.files import to_pil

# Extensions we try to decode. Anything else in a source folder is skipped as "wrong type".
IMAGE_EXTENSIONS = frozenset({
    ".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".gif", ".tif", ".tiff", ".webp",
    ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".qoi",
} | ({".avif"} if "AVIF" in Image.OPEN else set()))

# Formats people have in their photo folders that Pillow cannot read: say so precisely.
UNSUPPORTED_HINTS = {
    ".heic": "HEIC is not supported; convert to JPEG or PNG",
    ".heif": "HEIF is not supported; convert to JPEG or PNG",
    ".avif": "AVIF needs a Pillow built with AVIF support; convert to JPEG or PNG",
    ".svg": "SVG is a vector format; render it to PNG first",
    ".raw": "camera RAW is not supported; export to JPEG or PNG",
    ".cr2": "camera RAW is not supported; export to JPEG or PNG",
    ".nef": "camera RAW is not supported; export to JPEG or PNG",
    ".dng": "camera RAW is not supported; export to JPEG or PNG",
}

TRANSFORMS = ("center-crop", "center-crop-wide", "pad")
RESIZE_FILTERS = {"lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX}
DEFAULT_MAX_PIXELS = 100_000_000  # decompression-bomb cap: a 10000x10000 image decodes to 300 MB

GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})

# Reasons a file is skipped (keys of the report).
UNREADABLE = "unreadable"
TOO_SMALL = "too small"
TOO_LARGE = "too large"
WRONG_TYPE = "wrong type"
UNSAFE_PATH = "unsafe path"
NO_LABEL = "no label"


class Skip(Exception):
    """This one file cannot be used: `reason` is one of the constants above, `detail` says why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def classify_name(name: str) -> tuple[str, str] | None:
    """(reason, detail) when a file should be skipped from its name alone, else None."""
    p = PurePosixPath(name)
    base = p.name
    if base.startswith("._") or "__MACOSX" in p.parts:
        return WRONG_TYPE, "macOS metadata file"
    if base.lower() in {".ds_store", "thumbs.db", "desktop.ini"}:
        return WRONG_TYPE, "system file"
    ext = p.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return None
    if ext in UNSUPPORTED_HINTS:
        return WRONG_TYPE, UNSUPPORTED_HINTS[ext]
    return WRONG_TYPE, f"not an image file ({ext or 'no extension'})"


def is_safe_member_name(name: str) -> bool:
    """A zip member name that stays inside the archive root (no '..', absolute paths or drive letters)."""
    if not name or "\x00" in name:
        return False
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return False
    return ".." not in norm.split("/")


def peek_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first bytes of an image file, without decoding; None when they do not say."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(head)) as im:
                return im.size
    except Exception:  # noqa: BLE001 - not an image, or a header longer than `head`
        return None


def open_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft_size: int | None = None,
               transform: str = "center-crop") -> Image.Image:
    """Decode `data` fully (first frame) with EXIF orientation applied. Raises Skip.

    draft_size: lets the JPEG decoder downscale by 1/2..1/8 while keeping the side that the
      transform uses at least 2x this size (a large speed-up for big photos, no visible loss).
    """
    if not data:
        raise Skip(UNREADABLE, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own pixel cap replaces Pillow's warning; its hard error is still caught below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w <= 0 or h <= 0:
                raise Skip(UNREADABLE, f"invalid size {w}x{h}")
            if w * h > max_pixels:
                raise Skip(TOO_LARGE, f"{w}x{h} is over the {max_pixels:,}-pixel cap (--max-pixels)")
            if draft_size and im.format == "JPEG":
                side = relevant_side(w, h, transform)
                scale = 2 * draft_size / side
                if scale < 1:
                    im.draft(None, (max(1, int(w * scale + 1)), max(1, int(h * scale + 1))))
            im.load()
    except Skip:
        raise
    except UnidentifiedImageError:
        raise Skip(UNREADABLE, "not a recognised image (corrupt, or a different file type)") from None
    except Image.DecompressionBombError as e:
        raise Skip(TOO_LARGE, f"decompression bomb: {e}") from None
    except MemoryError:
        raise Skip(TOO_LARGE, "ran out of memory decoding it") from None
    except Exception as e:  # noqa: BLE001 - Pillow plugins raise many types on malformed data
        msg = str(e) or type(e).__name__
        if "truncated" in msg.lower():
            msg = "truncated file"
        raise Skip(UNREADABLE, msg) from None
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - a broken EXIF block: keep the pixels as stored
        pass
    return im


def image_channels(mode: str) -> int:
    """1 for gray modes, 3 otherwise (the channel count an image contributes without alpha)."""
    return 1 if mode in GRAY_MODES else 3


def parse_color(value: str | tuple) -> tuple[int, int, int]:
    """'white' | 'black' | 'gray' | '#rrggbb' | (r, g, b) -> (r, g, b)."""
    if isinstance(value, tuple):
        return tuple(int(v) for v in value[:3])  # type: ignore[return-value]
    names = {"white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128), "grey": (128, 128, 128)}
    v = value.strip().lower()
    if v in names:
        return names[v]
    if v.startswith("#") and len(v) == 7:
        try:
            return int(v[1:3], 16), int(v[3:5], 16), int(v[5:7], 16)
        except ValueError:
            pass
    raise ValueError(f"unknown colour {value!r}; use white, black, gray or #rrggbb")


def _normalize_mode(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> one of L, LA, RGB, RGBA."""
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I") or mode == "F":
        arr = np.asarray(im)
        if arr.dtype == np.float32 or arr.dtype == np.float64:
            arr = np.clip(arr * 255 if arr.max(initial=0) <= 1.0 else arr, 0, 255)
        elif arr.max(initial=0) > 255:  # 16-bit range
            arr = arr.astype(np.float64) / 257.0
        return Image.fromarray(np.round(arr).astype(np.uint8), "L")
    if mode == "P":
        return im.convert("RGBA" if "transparency" in im.info else "RGB")
    if mode in ("PA", "RGBa", "La"):
        return im.convert("RGBA" if mode != "La" else "LA")
    if mode in ("RGBX",):
        return im.convert("RGB")
    return im.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def to_channels(im: Image.Image, channels: int, background=(255, 255, 255)) -> Image.Image:
    """Convert to L (1), RGB (3) or RGBA (4), compositing transparency over `background` unless 4."""
    im = _normalize_mode(im)
    if channels == 4:
        return im if im.mode == "RGBA" else im.convert("RGBA")
    if im.mode in ("LA", "RGBA"):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        canvas.alpha_composite(rgba)
        im = canvas.convert("RGB")
    if channels == 1:
        return im if im.mode == "L" else im.convert("L")
    return im if im.mode == "RGB" else im.convert("RGB")


def relevant_side(w: int, h: int, transform: str) -> int:
    """The side whose length must reach the resolution without upscaling."""
    if transform == "pad":
        return max(w, h)
    if transform == "center-crop-wide":
        return min(w, 2 * h)
    return min(w, h)


def reshape(im: Image.Image, resolution: int, *, transform: str = "center-crop",
            resize_filter: str = "lanczos", upscale: bool = False, background=(255, 255, 255)) -> Image.Image:
    """Crop or pad to the transform's aspect ratio, then resize to resolution x resolution. Raises Skip."""
    w, h = im.size
    side = relevant_side(w, h, transform)
    if side < resolution and not upscale:
        raise Skip(TOO_SMALL, f"{w}x{h} is smaller than {resolution}x{resolution} "
                              f"after {transform} (pass --upscale to enlarge such images)")
    filt = RESIZE_FILTERS[resize_filter]
    fill = _fill(im.mode, background)
    if transform == "center-crop":
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        im = im.crop((left, top, left + s, top + s))
        return _resize(im, (resolution, resolution), filt)
    if transform == "pad":
        s = max(w, h)
        if s != w or s != h:
            canvas = Image.new(im.mode, (s, s), fill)
            canvas.paste(im, ((s - w) // 2, (s - h) // 2))
            im = canvas
        return _resize(im, (resolution, resolution), filt)
    if transform == "center-crop-wide":
        cw, ch = (2 * h, h) if w >= 2 * h else (w, w // 2)
        ch = max(ch, 1)
        left, top = (w - cw) // 2, (h - ch) // 2
        im = _resize(im.crop((left, top, left + cw, top + ch)), (resolution, max(resolution // 2, 1)), filt)
        canvas = Image.new(im.mode, (resolution, resolution), fill)
        canvas.paste(im, (0, (resolution - im.size[1]) // 2))
        return canvas
    raise ValueError(f"unknown transform {transform!r}; choose one of {', '.join(TRANSFORMS)}")


def _fill(mode: str, background):
    r, g, b = background
    if mode == "L":
        return int(round(0.299 * r + 0.587 * g + 0.114 * b))
    if mode == "RGBA":
        return (0, 0, 0, 0)  # padding of a kept alpha channel is transparent
    return (r, g, b)


def _resize(im: Image.Image, size: tuple[int, int], filt) -> Image.Image:
    if im.size == size:
        return im
    # reducing_gap: box-reduce big images first, Lanczos then runs on <= 3x the target (same look, faster).
    return im.resize(size, filt, reducing_gap=3.0 if filt == Image.Resampling.LANCZOS else None)


def to_array(im: Image.Image) -> np.ndarray:
    """PIL image -> uint8 HWC array (C = 1, 3 or 4)."""
    arr = np.asarray(im, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def encode_png(arr: np.ndarray, compress_level: int = 6) -> bytes:
    """uint8 HWC -> PNG bytes (L, RGB or RGBA)."""
    img = to_pil(arr)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


try:  # optional fast PNG decoder (pip install pyspng)
    import pyspng as _pyspng
except Exception:  # noqa: BLE001 - missing or broken: fall back to Pillow
    _pyspng = None


def have_pyspng() -> bool:
    return _pyspng is not None


def decode_png_fast(data: bytes) -> np.ndarray | None:
    """An 8-bit PNG -> uint8 HWC with pyspng; None when pyspng is missing or the file is not plain 8-bit."""
    if _pyspng is None or data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    # Only gray / RGB / RGBA at 8 bits (IHDR colour types 0, 2, 6; bit depth 8): the files we write.
    if len(data) < 26 or data[24] != 8 or data[25] not in (0, 2, 6):
        return None
    try:
        arr = _pyspng.load(data)
    except Exception:  # noqa: BLE001 - leave error reporting to the Pillow path
        return None
    if arr.dtype != np.uint8:
        return None
    return arr[:, :, None] if arr.ndim == 2 else arr
