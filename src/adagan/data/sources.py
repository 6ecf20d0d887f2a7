"""Where the dataset tool reads images from: a folder, a zip, MNIST idx files, the CIFAR-10 python tarball,
or a built-in set.

A source is a sorted list of `Item`s. Each item has a name (its path inside the source, '/'-separated),
a `read()` that returns the encoded bytes (files) or a uint8 HWC array (MNIST, CIFAR), and optionally
a class index that the source itself knows (MNIST, CIFAR, Twemoji). Nothing is ever extracted to disk,
so hostile member names in a zip or tar cannot write anywhere; they are still refused ("unsafe path").
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import re
import struct
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zlib import error as zlib_error

import numpy as np

from adagan.data.images import TOO_LARGE, UNREADABLE, Skip, is_safe_member_name
from adagan.errors import DatasetError

MAX_FILE_BYTES = 512 * 2**20  # a single image file larger than this is refused (zip bombs, stray videos)


@dataclass
class Item:
    name: str
    read: Callable[[], bytes | np.ndarray]
    label: int | None = None  # known to the source (MNIST, CIFAR, builtin)
    size: tuple[int, int] | None = None  # known without decoding (arrays)


@dataclass
class Source:
    """A listing of items plus what the source knows about itself."""

    description: str
    items: list[Item]
    kind: str  # folder | zip | mnist | cifar10 | builtin
    class_names: list[str] | None = None  # for sources with intrinsic labels
    dataset_json: dict | None = None  # a dataset.json found at the source root
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (name, reason, detail) when listing
    license: str | None = None
    origin: str | None = None  # short text for dataset.json "source"
    default_resolution: int | None = None
    default_channels: int | None = None
    keep_duplicates: bool = False  # benchmark sets keep their canonical image count

    def close(self) -> None:
        for fn in getattr(self, "_closers", []):
            fn()


def open_source(spec: str | os.PathLike) -> Source:
    """Parse --source: 'builtin:NAME[@RES]', a folder, a zip, an MNIST idx file or a CIFAR-10 tarball."""
    s = str(spec)
    if s.startswith("builtin:"):
        from adagan.data.builtin import builtin_source

        return builtin_source(s)
    path = Path(s).expanduser()
    if not path.exists():
        raise DatasetError(f"--source {s}: no such file or folder; give a folder of images, a .zip, MNIST "
                           "idx files, the CIFAR-10 python tarball or builtin:twemoji")
    if path.is_dir():
        mnist = _find_mnist_in_dir(path)
        if mnist is not None:
            return mnist_source(mnist)
        return folder_source(path)
    if _is_mnist_name(path.name):
        return mnist_source(path)
    if zipfile.is_zipfile(path):
        return zip_source(path)
    if _looks_like_tar(path):
        return cifar10_source(path)
    raise DatasetError(f"--source {s}: not a folder, zip, MNIST idx file or CIFAR-10 tarball; put your "
                       "images in a folder (sub-folders = classes) and pass the folder")


# ---- folder ---------------------------------------------------------------------------------------------


def _read_file(path: Path) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise Skip(TOO_LARGE, f"{size / 2**20:.0f} MB file is over the {MAX_FILE_BYTES // 2**20} MB "
                                      "limit")
            return path.read_bytes()
        except Skip:
            raise
        except OSError as e:
            raise Skip(UNREADABLE, e.strerror or str(e)) from None

    return read


def folder_source(root: Path) -> Source:
    items: list[Item] = []
    meta = None
    # Walk sorted for a stable order; do not follow directory links (loops), do follow file links.
    for dirpath, dirnames, filenames in os.walk(root, onerror=None, followlinks=False):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root)
        for fn in sorted(filenames):
            rel = (rel_dir / fn).as_posix()
            if rel == "dataset.json":
                meta = _load_json_file(root / fn, f"{root}/dataset.json")
                continue
            items.append(Item(rel, _read_file(Path(dirpath) / fn)))
    items.sort(key=lambda it: it.name)
    if not items:
        raise DatasetError(f"--source {root}: the folder is empty; put images in it (sub-folders = classes)")
    return Source(f"folder {root}", items, "folder", dataset_json=meta, origin=root.name)


def _load_json_file(path: Path, what: str) -> dict:
    try:
        return _parse_dataset_json(path.read_bytes(), what)
    except OSError as e:
        raise DatasetError(f"cannot read {what}: {e.strerror or e}") from None


def _parse_dataset_json(data: bytes, what: str) -> dict:
    try:
        meta = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{what} is not valid JSON ({e}); fix it or pass --labels subfolders / none") \
            from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{what} must be a JSON object like {{\"labels\": [[\"a/1.png\", 0], ...]}}")
    return meta


# ---- zip ------------------------------------------------------------------------------------------------


def zip_source(path: Path) -> Source:
    try:
        zf = zipfile.ZipFile(path)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise DatasetError(f"--source {path}: not a readable zip file ({e}); re-download or re-create it") \
            from None
    items: list[Item] = []
    rejected = []
    meta = None
    for info in sorted(infos, key=lambda i: i.filename):
        name = info.filename
        if info.is_dir():
            continue
        if not is_safe_member_name(name):
            rejected.append((name, "unsafe path", "member name escapes the archive root"))
            continue
        name = name.replace("\\", "/")
        if name == "dataset.json":
            try:
                meta = _parse_dataset_json(zf.read(info), f"{path}:dataset.json")
            except (zipfile.BadZipFile, OSError, RuntimeError) as e:
                raise DatasetError(f"cannot read dataset.json in {path} ({e})") from None
            continue
        items.append(Item(name, _zip_reader(zf, info)))
    if not items and not rejected:
        raise DatasetError(f"--source {path}: the zip is empty")
    src = Source(f"zip {path}", items, "zip", dataset_json=meta, rejected=rejected, origin=path.name)
    src._closers = [zf.close]  # type: ignore[attr-defined]
    return src


def _zip_reader(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def read() -> bytes:
        if info.file_size > MAX_FILE_BYTES:
            raise Skip(TOO_LARGE, f"{info.file_size / 2**20:.0f} MB member is over the "
                                  f"{MAX_FILE_BYTES // 2**20} MB limit")
        try:
            return zf.read(info)  # ZipFile serialises reads from several threads itself
        except RuntimeError as e:  # encrypted
            raise Skip(UNREADABLE, str(e)) from None
        except NotImplementedError as e:  # unsupported compression
            raise Skip(UNREADABLE, str(e)) from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib_error) as e:
            raise Skip(UNREADABLE, f"corrupt zip member ({e})") from None

    return read


# ---- MNIST idx ------------------------------------------------------------------------------------------

_MNIST_RE = re.compile(r"(.*)-images[-.]idx3-ubyte(\.gz)?$")


def _is_mnist_name(name: str) -> bool:
    return _MNIST_RE.match(name) is not None


def _find_mnist_in_dir(path: Path) -> Path | None:
    for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "train-images.idx3-ubyte"):
        if (path / name).is_file():
            return path / name
    return None


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DatasetError(f"cannot read {path} ({e}); re-download it") from None
    if len(raw) < 4 + 4 * ndim or raw[0:2] != b"\0\0" or raw[2] != 0x08 or raw[3] != ndim:
        raise DatasetError(f"{path} is not an MNIST idx file of uint8 with {ndim} dimension(s); "
                           "re-download it")
    dims = struct.unpack(f">{ndim}I", raw[4: 4 + 4 * ndim])
    count = int(np.prod(dims))
    body = raw[4 + 4 * ndim:]
    if len(body) < count:
        raise DatasetError(f"{path} is truncated ({len(body):,} of {count:,} bytes); re-download it")
    return np.frombuffer(body[:count], dtype=np.uint8).reshape(dims)


def mnist_source(images_path: Path) -> Source:
    """The images file plus its labels file (same name with labels-idx1); 28x28 padded to 32x32 (LeNet)."""
    images = _read_idx(images_path, 3)
    m = _MNIST_RE.match(images_path.name)
    label_names = [f"{m.group(1)}-labels-idx1-ubyte{m.group(2) or ''}", f"{m.group(1)}-labels.idx1-ubyte",
                   f"{m.group(1)}-labels-idx1-ubyte", f"{m.group(1)}-labels-idx1-ubyte.gz"] if m else []
    labels = None
    for ln in label_names:
        if (images_path.parent / ln).is_file():
            labels = _read_idx(images_path.parent / ln, 1)
            break
    if labels is not None and len(labels) != len(images):
        raise DatasetError(f"MNIST labels file next to {images_path.name} has {len(labels):,} labels for "
                           f"{len(images):,} images; use the matching pair of files")
    if labels is not None and labels.size and labels.max() > 9:
        raise DatasetError(f"MNIST labels next to {images_path.name} go up to {labels.max()}; expected 0-9")
    padded = np.pad(images, [(0, 0), (2, 2), (2, 2)])  # the usual 28 -> 32 zero border; strokes unscaled
    items = [Item(f"{i:05d}", (lambda i=i: padded[i][:, :, None]), None if labels is None else int(labels[i]),
                  size=(32, 32)) for i in range(len(padded))]
    note = ", no labels file" if labels is None else ""
    return Source(f"MNIST {images_path.name} ({len(items):,} images{note})", items, "mnist",
                  class_names=[str(d) for d in range(10)] if labels is not None else None,
                  origin=f"MNIST {images_path.name}", default_resolution=32, default_channels=1,
                  keep_duplicates=True)


# ---- CIFAR-10 python tarball ----------------------------------------------------------------------------


def _looks_like_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts/lists/bytes and numpy arrays only: the CIFAR batches are pickles, and a pickle
    can run code, so every other global is refused."""

    def find_class(self, module, name):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "_codecs" and name == "encode":
            import codecs

            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(data: bytes, what: str):
    try:
        return _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any failure: not a CIFAR batch we trust
        raise DatasetError(f"{what} is not a plain CIFAR-10 batch ({e}); use the official "
                           "cifar-10-python.tar.gz") from None


def _get(d: dict, key: str):
    return d.get(key.encode(), d.get(key))


def cifar10_source(path: Path) -> Source:
    """Training batches data_batch_1..5 (50,000 images, the FID reference set) with their 10 labels."""
    try:
        tf = tarfile.open(path, "r:*")
        members = {m.name: m for m in tf.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"--source {path}: cannot read the tar archive ({e}); re-download it") from None
    batches = sorted(n for n in members if re.search(r"(^|/)data_batch_[1-5]$", n))
    meta_name = next((n for n in members if re.search(r"(^|/)batches\.meta$", n)), None)
    if not batches:
        raise DatasetError(f"--source {path}: no CIFAR-10 data_batch_N files inside; use the python version "
                           "(cifar-10-python.tar.gz) or extract your images into a folder")
    imgs, labels = [], []
    for n in batches:
        d = _unpickle(_read_member(tf, members[n]), f"{path}:{n}")
        data, lab = (_get(d, "data"), _get(d, "labels")) if isinstance(d, dict) else (None, None)
        ok = isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.shape[1:] == (3072,)
        if not ok or lab is None or len(lab) != len(data):
            raise DatasetError(f"{path}:{n} does not hold CIFAR-10 data (uint8 [N, 3072] + N labels)")
        imgs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.extend(int(v) for v in lab)
    names = [str(i) for i in range(10)]
    if meta_name:
        m = _unpickle(_read_member(tf, members[meta_name]), f"{path}:{meta_name}")
        ln = _get(m, "label_names") if isinstance(m, dict) else None
        if isinstance(ln, list) and ln:
            names = [v.decode() if isinstance(v, bytes) else str(v) for v in ln]
    tf.close()
    all_imgs = np.ascontiguousarray(np.concatenate(imgs))
    if labels and (min(labels) < 0 or max(labels) >= len(names)):
        raise DatasetError(f"{path}: labels outside 0..{len(names) - 1}; re-download the tarball")
    items = [Item(f"{i:05d}", (lambda i=i: all_imgs[i]), labels[i], size=(32, 32))
             for i in range(len(all_imgs))]
    return Source(f"CIFAR-10 {path.name} (training batches, {len(items):,} images)", items, "cifar10",
                  class_names=names, origin=f"CIFAR-10 {path.name}", default_resolution=32,
                  default_channels=3, keep_duplicates=True)


def _read_member(tf: tarfile.TarFile, m: tarfile.TarInfo) -> bytes:
    if m.size > 1 << 30:
        raise DatasetError(f"{m.name} in the tarball is implausibly large ({m.size:,} bytes)")
    try:
        f = tf.extractfile(m)
        return f.read() if f is not None else b""
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"cannot read {m.name} from the tarball ({e}); re-download it") from None

