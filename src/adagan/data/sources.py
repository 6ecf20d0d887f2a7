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
import stat
import struct
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zlib import error as zlib_error

import numpy as np

from adagan import safe_pickle
from adagan.data.images import TOO_LARGE, UNREADABLE, WRONG_TYPE, Skip, is_safe_member_name
from adagan.errors import DatasetError

MAX_FILE_BYTES = 512 * 2**20  # a single image file larger than this is refused (zip bombs, stray videos)
MAX_JSON_BYTES = 256 * 2**20  # a dataset.json larger than this is refused
MAX_ARRAY_BYTES = 2**30  # MNIST / CIFAR data (decompressed): MNIST is 47 MB, CIFAR-10 150 MB
HEAD_BYTES = 65536  # what `Item.head` reads: enough for an image header


@dataclass
class Item:
    name: str
    read: Callable[[], bytes | np.ndarray]
    label: int | None = None  # known to the source (MNIST, CIFAR, builtin)
    size: tuple[int, int] | None = None  # known without decoding (arrays)
    nbytes: int = 0  # declared size of the encoded file (from the folder or the zip directory)
    head: Callable[[], bytes] | None = None  # the first HEAD_BYTES of the file, for its image header


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
    if s.startswith("builtin:"):  # a built-in set is a Source of data/builtin.py (prepare.open_any)
        raise DatasetError(f"--source {s}: open built-in sets with adagan.data.prepare.open_any")
    path = Path(s).expanduser()
    if not path.exists():
        raise DatasetError(f"--source {s}: no such file or folder; give a folder of images, a .zip, MNIST "
                           "idx files, the CIFAR-10 python tarball or builtin:twemoji")
    if not path.is_dir() and not path.is_file():  # a pipe or a device: reading it would block or never end
        raise DatasetError(f"--source {s} is not a regular file or folder")
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


def read_file(path: Path, limit: int = MAX_FILE_BYTES) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            size = path.stat().st_size
            if size > limit:
                raise Skip(TOO_LARGE, f"{size / 2**20:.0f} MB file is over the {limit // 2**20} MB limit")
            with open(path, "rb") as f:
                data = f.read(limit + 1)  # a file that grew since stat() is still bounded
            if len(data) > limit:
                raise Skip(TOO_LARGE, f"file is over the {limit // 2**20} MB limit")
            return data
        except Skip:
            raise
        except OSError as e:
            raise Skip(UNREADABLE, e.strerror or str(e)) from None

    return read


def _file_head(path: Path) -> Callable[[], bytes]:
    def head() -> bytes:
        with open(path, "rb") as f:
            return f.read(HEAD_BYTES)

    return head


def folder_source(root: Path) -> Source:
    items: list[Item] = []
    rejected: list[tuple[str, str, str]] = []
    meta = None

    def unreadable(err: OSError) -> None:  # a sub-folder we cannot list: its images would silently be missing
        where = Path(err.filename).relative_to(root).as_posix() if err.filename else "?"
        rejected.append((where + "/", UNREADABLE, f"folder not readable ({err.strerror or err}); its images are "
                                                  "left out"))

    # Walk sorted for a stable order; do not follow directory links (loops), do follow file links.
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root)
        for fn in sorted(filenames):
            rel = (rel_dir / fn).as_posix()
            path = Path(dirpath) / fn
            try:
                st = path.stat()
            except OSError as e:
                rejected.append((rel, UNREADABLE, e.strerror or str(e)))
                continue
            if not stat.S_ISREG(st.st_mode):  # pipes, sockets, devices: reading them would block
                rejected.append((rel, WRONG_TYPE, "not a regular file"))
                continue
            if rel == "dataset.json":
                meta = _load_json_file(root / fn, f"{root}/dataset.json")
                continue
            items.append(Item(rel, read_file(path), nbytes=st.st_size, head=_file_head(path)))
    items.sort(key=lambda it: it.name)
    if not items and not rejected:
        raise DatasetError(f"--source {root}: the folder is empty; put images in it (sub-folders = classes)")
    return Source(f"folder {root}", items, "folder", dataset_json=meta, rejected=rejected, origin=root.name)


def _load_json_file(path: Path, what: str) -> dict:
    try:
        return _parse_dataset_json(read_file(path, MAX_JSON_BYTES)(), what)
    except Skip as e:
        raise DatasetError(f"cannot read {what}: {e.detail}") from None


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
            if info.file_size > MAX_JSON_BYTES:
                raise DatasetError(f"dataset.json in {path} declares {info.file_size:,} bytes, over the "
                                   f"{MAX_JSON_BYTES // 2**20} MB limit")
            try:
                meta = _parse_dataset_json(zf.read(info), f"{path}:dataset.json")
            except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, zlib_error, NotImplementedError) as e:
                raise DatasetError(f"cannot read dataset.json in {path} ({e})") from None
            continue
        items.append(Item(name, _zip_reader(zf, info), nbytes=info.file_size, head=_zip_head(zf, info)))
    if not items and not rejected:
        raise DatasetError(f"--source {path}: the zip is empty")
    src = Source(f"zip {path}", items, "zip", dataset_json=meta, rejected=rejected, origin=path.name)
    src._closers = [zf.close]  # type: ignore[attr-defined]
    return src


def _zip_head(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    def head() -> bytes:
        with zf.open(info) as f:
            return f.read(HEAD_BYTES)

    return head


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
    """An idx file (gzipped or not), reading no more than its header declares and at most MAX_ARRAY_BYTES."""
    try:
        with open(path, "rb") as raw_f:
            gz = raw_f.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            header = f.read(4 + 4 * ndim)
            if len(header) < 4 + 4 * ndim or header[0:2] != b"\0\0" or header[2] != 0x08 or header[3] != ndim:
                raise DatasetError(f"{path} is not an MNIST idx file of uint8 with {ndim} dimension(s); "
                                   "re-download it")
            dims = struct.unpack(f">{ndim}I", header[4:])
            count = int(np.prod(dims, dtype=np.float64))
            if count > MAX_ARRAY_BYTES:
                raise DatasetError(f"{path} declares {count:,} bytes of images, over the {MAX_ARRAY_BYTES // 2**20} "
                                   "MB limit (MNIST is 47 MB)")
            body = f.read(count)
    except (OSError, EOFError, gzip.BadGzipFile, zlib_error) as e:
        raise DatasetError(f"cannot read {path} ({e}); re-download it") from None
    if len(body) < count:
        raise DatasetError(f"{path} is truncated ({len(body):,} of {count:,} bytes); re-download it")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


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
    if images.shape[1:] != (28, 28):
        raise DatasetError(f"{images_path} holds {images.shape[1]}x{images.shape[2]} images; MNIST's are 28x28")

    def padded(i: int) -> np.ndarray:  # the usual 28 -> 32 zero border; strokes unscaled (one image at a time)
        return np.pad(images[i], 2)[:, :, None]

    items = [Item(f"{i:05d}", (lambda i=i: padded(i)), None if labels is None else int(labels[i]), size=(32, 32))
             for i in range(len(images))]
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
    """Unpickles dicts/lists/bytes and plain numpy arrays only: the CIFAR batches are pickles, and a pickle
    can run code, so every other global is refused (safe_pickle: no allocation past what the data holds)."""

    GLOBALS = safe_pickle.numpy_globals()

    def find_class(self, module, name):
        if (module, name) in self.GLOBALS:
            return self.GLOBALS[(module, name)]
        if module == "_codecs" and name == "encode":
            import codecs

            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(data: bytes, what: str):
    try:
        safe_pickle.scan_all(data, 1)
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
    if sum(members[n].size for n in batches) > MAX_ARRAY_BYTES // 2:
        raise DatasetError(f"--source {path}: the data_batch files declare more than {MAX_ARRAY_BYTES // 2**21} MB "
                           "(CIFAR-10's are 150 MB); not the CIFAR-10 python tarball")
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
    if m.size > MAX_ARRAY_BYTES // 4:  # CIFAR-10's batches are 31 MB each
        raise DatasetError(f"{m.name} in the tarball is implausibly large ({m.size:,} bytes)")
    try:
        f = tf.extractfile(m)
        return f.read() if f is not None else b""
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"cannot read {m.name} from the tarball ({e}); re-download it") from None

