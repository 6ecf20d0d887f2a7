"""Writing files, one way for every writer: atomically, under one temporary-name pattern.

Every file adagan writes (network files, training states, image grids, config.json, stats.jsonl when cut
back, report.png/html, datasets, weights and feature caches) goes through `atomic_write`: the bytes go to
`.<name>.<random>.tmp` in the same folder, which is then renamed over `<name>`, so a crash at any moment
leaves the old file or the new one, never half a file, and a killed writer's leftovers match one pattern
(`temp_pattern`; training/checkpoint.py removes a run's own). Images cross into files through one
converter, `to_pil` (uint8 [H, W, C] -> PIL, the single channel of a grey image dropped).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from adagan.errors import CheckpointError, ConfigError
from adagan.ops.image import make_grid

TEMP_SUFFIX = ".tmp"


def temp_pattern(names: str) -> str:
    """A regular expression matching the temporaries `atomic_write` leaves for files whose names match the
    regular expression `names` (the random part is optional: writers before this layer used none)."""
    return rf"^\.({names})(\.[A-Za-z0-9_]+)?\{TEMP_SUFFIX}$"


def _umask() -> int:
    try:  # Linux: read it without changing it (other threads may be creating files)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere it can only be read by setting it
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """The permission bits a plain `open(path, "w")` would leave: the existing file's, else 0o666 & ~umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def atomic_write(path: str | os.PathLike, write_fn) -> None:
    """Call write_fn(tmp_path) on a temp file in the same folder, then rename it over `path`.

    A crash at any moment leaves either the old file or the new one, never half a file. The file gets the
    permissions `open()` would give it (those of the file it replaces, else 0o666 less the umask), not the
    owner-only 0o600 of a temporary file.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=parent)
    except OSError as e:
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}; choose a writable location") from None
    os.close(fd)
    try:
        write_fn(tmp)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, obj, **kw) -> None:
    write_text(path, json.dumps(obj, **kw) + "\n")


def to_pil(img: np.ndarray):
    """uint8 [H, W, C] (C = 1, 3 or 4) -> PIL image (mode L, RGB or RGBA)."""
    from PIL import Image

    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected uint8 [H, W, 1|3|4], got {img.dtype} {list(img.shape)}")
    return Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)


def save_png(img: np.ndarray, path: str | os.PathLike) -> None:
    """uint8 [H, W, C] -> a PNG file, written atomically."""
    atomic_write(path, lambda tmp: to_pil(img).save(tmp, format="PNG"))


def save_grid(images: np.ndarray, path: str | os.PathLike, cols: int | None = None) -> None:
    """uint8 [N, H, W, C] -> one image file of the images in a grid (ops.image.make_grid), atomically."""
    save_image(make_grid(images, cols), path)


def save_image(img: np.ndarray, path: str | os.PathLike) -> None:
    """uint8 [H, W, C] -> an image file whose format its extension names (.png, .jpg, ...), atomically."""
    from PIL import Image

    Image.init()
    fmt = Image.EXTENSION.get(os.path.splitext(str(path))[1].lower())
    if fmt is None:
        raise ConfigError(f"cannot write {path}: unknown image file extension; use .png or .jpg")
    atomic_write(path, lambda tmp: to_pil(img).save(tmp, format=fmt))


def save_video(frames, path: str | os.PathLike, fps: float = 30) -> None:
    """uint8 frames [T, H, W, C] (or an iterable of such batches) -> .mp4 (H.264 via imageio-ffmpeg, written
    as the frames come) or .gif (Pillow, assembled in memory)."""
    path = str(path)
    ext = os.path.splitext(path)[1].lower()
    batches = [frames] if isinstance(frames, np.ndarray) else frames

    def rgb(batch):
        if batch.shape[3] == 1:
            return batch.repeat(3, axis=3)
        return batch[..., :3] if batch.shape[3] == 4 else batch

    if ext == ".gif":
        from PIL import Image

        imgs = [Image.fromarray(f) for batch in batches for f in rgb(batch)]
        atomic_write(path, lambda tmp: imgs[0].save(tmp, format="GIF", save_all=True, append_images=imgs[1:],
                                                     duration=max(1, round(1000 / fps)), loop=0))
        return
    if ext != ".mp4":
        raise ConfigError(f"video must end in .mp4 or .gif, got {path}")
    # MP4 is streamed to its file by ffmpeg as the frames come (not atomic: a video is no state to resume).
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise ConfigError("writing MP4 needs imageio and imageio-ffmpeg: pip install 'adagan[video]', "
                          "or write a .gif") from None
    writer = None
    try:
        for batch in batches:
            batch = rgb(batch)
            if writer is None:
                # H.264 wants even sizes; macro_block_size=1 keeps small frames unscaled.
                even = batch.shape[1] % 2 == 0 and batch.shape[2] % 2 == 0
                try:
                    writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=1,
                                                pixelformat="yuv420p" if even else "yuv444p")
                except (ImportError, RuntimeError) as e:
                    raise ConfigError(f"cannot write MP4 ({e}); pip install imageio-ffmpeg, or write a .gif") \
                        from None
            for f in batch:
                writer.append_data(f)
    finally:
        if writer is not None:
            writer.close()
