"""The training-time view of a dataset: a zip or folder of same-size square images -> uint8 CHW + labels.

Two kinds of input are read:
- a zip (or its unpacked folder) made by `adagan dataset`: PNGs of the size and channel count recorded
  in dataset.json, decoded as they are (with pyspng when installed);
- any zip or folder of images that all have the same square size (mixed formats and modes are fine):
  gray stays gray when every image is gray, otherwise RGB; transparency is composited on white; EXIF
  orientation is applied. Non-image files (.DS_Store, notes.txt) are ignored. Anything else -
  different sizes, unreadable files - gets an error that says to run `adagan dataset`, which crops,
  resizes and skips for you.

Labels come from dataset.json (`{"labels": [[name, class], ...]}`). `mirror` appends x-flipped copies
(indices N..2N-1), `subset` keeps a seeded random `subset` of the images (before mirroring).

Decoded images are kept in memory when they fit in `max_cache_bytes` (1 GiB by default, env
ADAGAN_DATA_CACHE_GB), so after the first epoch a batch is one fancy-index copy.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import threading
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.utils.data

from adagan.data import images as I
from adagan.data.builtin import resolved_builtin
from adagan.data.labels import label_matrix
from adagan.data.prepare import builtin_path
from adagan.errors import DatasetError
from adagan.files import to_pil

DEFAULT_CACHE_BYTES = 1 << 30
MAX_JSON_BYTES = 256 * 2**20  # dataset.json


def max_member_bytes(resolution: int | None) -> int:
    """The largest image file a dataset of this resolution can hold (16-bit RGBA uncompressed, plus headers);
    larger members are refused before they are read (zip bombs). None: before the resolution is known."""
    return 64 * 2**20 if resolution is None else 8 * resolution * resolution + 16 * 2**20


def _default_cache_bytes() -> int:
    v = os.environ.get("ADAGAN_DATA_CACHE_GB")
    if v:
        try:
            return int(float(v) * 2**30)
        except ValueError:
            pass
    return DEFAULT_CACHE_BYTES


# ---- storage: where the encoded bytes come from ------------------------------------------------------------


class _ZipStore:
    """Read-only zip access from any thread or (forked) process: one ZipFile handle per thread and pid."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with zipfile.ZipFile(path) as zf:
                infos = [i for i in zf.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise DatasetError(f"{path} is not a readable zip ({e}); re-create it with `adagan dataset`") \
                from None
        self.infos = {i.filename: i for i in infos}
        self._local = threading.local()

    def names(self) -> list[str]:
        return list(self.infos)

    def _zf(self) -> zipfile.ZipFile:
        loc = self._local
        if getattr(loc, "pid", None) != os.getpid():
            loc.zf, loc.pid = zipfile.ZipFile(self.path), os.getpid()
        return loc.zf

    def read(self, name: str, limit: int) -> bytes:
        info = self.infos[name]
        if info.file_size > limit:
            raise I.Skip(I.TOO_LARGE, f"declares {info.file_size:,} bytes, more than an image of this dataset can "
                                      f"have ({limit:,})")
        try:
            return self._zf().read(info)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, zlib.error) as e:
            raise I.Skip(I.UNREADABLE, f"corrupt zip member ({e})") from None

    def open(self, name: str):
        return self._zf().open(self.infos[name])

    def fingerprint(self, name: str, limit: int = 0) -> bytes:
        # CRC-32 and size of the stored bytes, from the central directory: no need to read the data.
        i = self.infos[name]
        return f"{i.CRC:08x}:{i.file_size}".encode()

    def __getstate__(self):
        return {"path": self.path, "infos": self.infos}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()


class _DirStore:
    def __init__(self, root: Path):
        self.path = root
        self._names = []

        def unreadable(err: OSError) -> None:  # its images would silently be missing from training
            raise DatasetError(f"{root}: the folder {err.filename} is not readable ({err.strerror or err}); make it "
                               "readable or move it out of the dataset")

        for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
            dirnames.sort()
            rel = Path(dirpath).relative_to(root)
            # regular files only: a pipe or a device would block the loader
            self._names += [(rel / f).as_posix() for f in filenames if (Path(dirpath) / f).is_file()]

    def names(self) -> list[str]:
        return list(self._names)

    def read(self, name: str, limit: int) -> bytes:
        try:
            with open(self.path / name, "rb") as f:
                data = f.read(limit + 1)
        except OSError as e:
            raise I.Skip(I.UNREADABLE, e.strerror or str(e)) from None
        if len(data) > limit:
            raise I.Skip(I.TOO_LARGE, f"more than an image of this dataset can have ({limit:,} bytes)")
        return data

    def open(self, name: str):
        return open(self.path / name, "rb")

    def fingerprint(self, name: str, limit: int) -> bytes:
        return hashlib.blake2b(self.read(name, limit), digest_size=16).digest()


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:64] or "dataset"


# ---- the dataset -----------------------------------------------------------------------------------------


class ImageDataset(torch.utils.data.Dataset):
    """Images as torch.uint8 [C, H, W] plus float32 one-hot labels [c_dim]; see the module docstring.

    path: a dataset zip or a folder. name: short filesystem-safe name (default: the file/folder stem).
    use_labels: return labels from dataset.json (c_dim = 0 when False or when there are none).
    cache: keep decoded images in memory (None = when they fit in max_cache_bytes).
    """

    def __init__(self, path: str | os.PathLike, *, name: str | None = None, use_labels: bool = False,
                 mirror: bool = False, subset: int | None = None, seed: int = 0, cache: bool | None = None,
                 max_cache_bytes: int | None = None, workers: int | None = None):
        self.path = Path(path).expanduser()
        self.name = _sanitize(name or (self.path.stem if self.path.is_file() else self.path.name))
        self.mirror = bool(mirror)
        if self.path.is_dir():
            self._store = _DirStore(self.path)
        elif self.path.is_file():
            self._store = _ZipStore(self.path)
        else:
            raise DatasetError(f"dataset {str(path)!r} does not exist; pass a zip made by `adagan dataset`, "
                               "a folder of images, or builtin:twemoji")
        all_names = self._store.names()
        meta = self._read_meta("dataset.json" in all_names)
        names = sorted(n for n in all_names if n != "dataset.json" and I.is_safe_member_name(n)
                       and I.classify_name(n) is None)
        if not names:
            raise DatasetError(f"{self.path} holds no images; create a dataset with "
                               f"`adagan dataset --source YOUR_IMAGES --dest {self.name}.zip`")
        self.license = meta.get("license")
        self.source = meta.get("source")
        self._ours = str(meta.get("created_by", "")).startswith("adagan dataset")
        if self._ours:
            res, ch = meta.get("resolution"), meta.get("channels")
            if type(res) is not int or not 1 <= res <= 8192 or type(ch) is not int or ch not in (1, 3, 4):
                raise DatasetError(f"{self.path}: dataset.json says resolution {str(res)[:20]}, channels "
                                   f"{str(ch)[:20]}; expected a size up to 8192 and 1, 3 or 4 channels. Re-create "
                                   "the dataset with `adagan dataset`")
            self.resolution, self.num_channels = res, ch
        else:
            self.resolution, self.num_channels = self._scan(names)
        self._max_bytes = max_member_bytes(self.resolution)

        # Labels.
        labels = meta.get("labels")
        self.data_has_labels = isinstance(labels, list) and len(labels) > 0
        self._label_matrix, all_class_names = (None, [])
        if use_labels and self.data_has_labels:
            self._label_matrix, all_class_names = label_matrix(labels, meta.get("class_names"), names,
                                                               f"{self.path}: dataset.json")

        # Subset (seeded, before mirroring).
        base = np.arange(len(names))
        if subset is not None:
            if subset < 1:
                raise DatasetError(f"--subset {subset}: must be at least 1")
            if subset > len(names):
                raise DatasetError(f"--subset {subset} is more than the {len(names):,} images in "
                                   f"{self.name}; pass at most {len(names)} or omit --subset")
            base = np.sort(np.random.default_rng(seed).choice(len(names), size=subset, replace=False))
        self.subset = subset
        self._names = [names[i] for i in base]
        if self._label_matrix is not None:
            self._label_matrix = np.ascontiguousarray(self._label_matrix[base])
        self.c_dim = 0 if self._label_matrix is None else int(self._label_matrix.shape[1])
        self.class_names = list(all_class_names) if self.c_dim else []

        # Decoded-image cache.
        self._n = len(self._names)
        nbytes = self._n * self.num_channels * self.resolution**2
        limit = _default_cache_bytes() if max_cache_bytes is None else max_cache_bytes
        self._use_cache = (nbytes <= limit) if cache is None else bool(cache)
        self._cache = np.empty([self._n, self.num_channels, self.resolution, self.resolution], np.uint8) \
            if self._use_cache else None
        self._loaded = np.zeros(self._n, bool) if self._use_cache else None
        self._workers = workers or min(os.cpu_count() or 1, 8)
        self._pool: ThreadPoolExecutor | None = None
        self._hash: str | None = None

    # -- construction helpers --

    def _read_meta(self, present: bool) -> dict:
        if not present:
            return {}
        try:
            raw = self._store.read("dataset.json", MAX_JSON_BYTES)
            meta = json.loads(raw.decode("utf-8-sig"))
        except (I.Skip, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise DatasetError(f"{self.path}: dataset.json is unreadable ({e}); re-create the dataset with "
                               "`adagan dataset`") from None
        if not isinstance(meta, dict):
            raise DatasetError(f"{self.path}: dataset.json must be a JSON object; re-create the dataset with "
                               "`adagan dataset`")
        return meta

    def _scan(self, names: list[str]) -> tuple[int, int]:
        """Size and channels of data not made by us: every image header must give the same square size."""
        from PIL import Image

        sizes: dict[tuple[int, int], list[str]] = {}
        bad: list[str] = []
        gray = True
        for n in names:
            try:
                with self._store.open(n) as f, Image.open(f) as im:
                    w, h = im.size
                    if im.getexif().get(0x0112) in (5, 6, 7, 8):
                        w, h = h, w
                    gray = gray and I.image_channels(im.mode) == 1
            except Exception:  # noqa: BLE001 - any failure to read a header
                bad.append(n)
                continue
            sizes.setdefault((w, h), []).append(n)
        hint = f"run `adagan dataset --source {self.path} --dest {self.name}.zip` to get a clean dataset"
        if bad:
            more = ", ..." if len(bad) > 3 else ""
            raise DatasetError(f"{self.path}: {len(bad)} file(s) are not readable images "
                               f"({', '.join(bad[:3])}{more}); {hint}, which skips them")
        if len(sizes) > 1:
            common = sorted(sizes.items(), key=lambda kv: -len(kv[1]))
            desc = ", ".join(f"{len(v)} at {w}x{h}" for (w, h), v in common[:4])
            more = ", ..." if len(common) > 4 else ""
            raise DatasetError(f"{self.path}: images have different sizes ({desc}{more}); {hint}, which "
                               "crops and resizes them")
        (w, h), = sizes
        if w != h:
            raise DatasetError(f"{self.path}: images are {w}x{h}, not square; {hint} (it crops or pads them)")
        return w, 1 if gray else 3

    # -- public API --

    def __len__(self) -> int:
        return self._n * (2 if self.mirror else 1)

    @property
    def has_labels(self) -> bool:
        """True when labels are returned (use_labels and the data has them); then c_dim > 0."""
        return self.c_dim > 0

    @property
    def image_shape(self) -> list[int]:
        return [self.num_channels, self.resolution, self.resolution]

    @property
    def names(self) -> list[str]:
        """File names inside the zip/folder, in index order (before mirroring)."""
        return list(self._names)

    def __getitem__(self, idx: int):
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} out of range for {n} images")
        img, label = self.get_batch([idx % n])
        return img[0], label[0]

    def get_batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 [N, C, H, W] and float32 [N, c_dim] for dataset indices (mirrored ones included)."""
        idx = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices, dtype=np.int64)
        idx = idx.reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"indices must be in [0, {n}), got {int(idx.min())}..{int(idx.max())}")
        base = idx % self._n
        if self._use_cache:
            missing = np.unique(base[~self._loaded[base]])
            if missing.size:
                self._fill(missing)
            imgs = self._cache[base]
        else:
            imgs = np.stack(self._decode_many(base.tolist())) if idx.size else \
                np.empty([0, *self.image_shape], np.uint8)
        if self.mirror:
            flip = idx >= self._n
            if flip.any():
                imgs[flip] = imgs[flip][..., ::-1]
        if self._label_matrix is not None:
            labels = self._label_matrix[base]
        else:
            labels = np.zeros([idx.size, 0], np.float32)
        return torch.from_numpy(np.ascontiguousarray(imgs)), torch.from_numpy(np.ascontiguousarray(labels))

    def get_label(self, idx: int) -> torch.Tensor:
        base = idx % self._n
        if self._label_matrix is None:
            return torch.zeros([0])
        return torch.from_numpy(self._label_matrix[base].copy())

    def preload(self, progress: bool = False) -> None:
        """Decode every image into the in-memory cache now (no-op when the cache is off)."""
        if not self._use_cache:
            return
        todo = np.flatnonzero(~self._loaded)
        chunk = 256
        from tqdm import tqdm

        with tqdm(total=todo.size, unit="img", desc=f"Loading {self.name}", disable=not progress,
                  file=sys.stderr) as bar:
            for i in range(0, todo.size, chunk):
                self._fill(todo[i: i + chunk])
                bar.update(min(chunk, todo.size - i))

    def content_hash(self) -> str:
        """Stable hex digest of the selected images' bytes, their labels (when used) and mirroring."""
        if self._hash is None:
            h = hashlib.sha256(b"adagan-dataset-v1\n")
            h.update(json.dumps({"mirror": self.mirror, "shape": self.image_shape,
                                 "decode": "as-stored" if self._ours else "composite-white"}).encode())
            for n in self._names:
                h.update(self._store.fingerprint(n, self._max_bytes) + b"\n")
            if self._label_matrix is not None:
                h.update(self._label_matrix.tobytes())
            self._hash = h.hexdigest()[:20]
        return self._hash

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def __repr__(self) -> str:
        return (f"ImageDataset({self.name!r}, {len(self)} images, {self.num_channels}x{self.resolution}x"
                f"{self.resolution}, c_dim={self.c_dim}, mirror={self.mirror})")

    def __getstate__(self):  # for DataLoader workers: no thread pool
        state = self.__dict__.copy()
        state["_pool"] = None
        return state

    # -- decoding --

    def _fill(self, base_idx: np.ndarray) -> None:
        arrs = self._decode_many(base_idx.tolist())
        self._cache[base_idx] = np.stack(arrs)
        self._loaded[base_idx] = True

    def _decode_many(self, base_idx: list[int]) -> list[np.ndarray]:
        if len(base_idx) < 8 or self._workers <= 1:
            return [self._decode(i) for i in base_idx]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="adagan-data")
        return list(self._pool.map(self._decode, base_idx))

    def _check_channels(self, name: str, channels: int) -> None:
        """Our zips hold images of exactly dataset.json's channel count (`adagan dataset` writes them so); another
        count means the file was edited, and converting silently would train, e.g., a grayscale model on RGB
        images. Refused like a size that differs from dataset.json's resolution."""
        if self._ours and channels != self.num_channels:
            raise DatasetError(f"{self.path}: {name} has {channels} channel(s) but dataset.json says "
                               f"{self.num_channels}; re-create the dataset with `adagan dataset` (--channels "
                               "chooses the count)")

    def _decode(self, i: int) -> np.ndarray:
        """Image i (before mirroring) as uint8 CHW."""
        name = self._names[i]
        try:
            data = self._store.read(name, self._max_bytes)
            size = I.peek_size(data[: 1 << 16]) if self._ours else None  # ours: the size before decoding
            if size is not None and size != (self.resolution, self.resolution):
                raise I.Skip(I.TOO_LARGE, f"its header says {size[0]}x{size[1]}, not {self.resolution}x"
                                          f"{self.resolution}")
            arr = I.decode_png_fast(data) if self._ours else None
            if arr is None:
                from PIL import Image

                if self._ours:
                    with Image.open(io.BytesIO(data)) as im:
                        im.load()
                        pil = im if im.mode in ("L", "RGB", "RGBA") else im.convert("RGB")
                    self._check_channels(name, len(pil.getbands()))
                else:
                    pil = I.open_image(data, max_pixels=max(I.DEFAULT_MAX_PIXELS, 4 * self.resolution**2))
                arr = I.to_array(I.to_channels(pil, self.num_channels))
            elif arr.shape[2] != self.num_channels:
                self._check_channels(name, arr.shape[2])
                arr = I.to_array(I.to_channels(to_pil(arr), self.num_channels))
        except I.Skip as e:
            raise DatasetError(f"{self.path}: cannot decode {name} ({e.detail}); fix or remove it, or run "
                               "`adagan dataset`, which skips such files") from None
        except DatasetError:
            raise
        except Exception as e:  # noqa: BLE001 - Pillow raises many types on malformed data
            raise DatasetError(f"{self.path}: cannot decode {name} ({e}); re-create the dataset with "
                               "`adagan dataset`") from None
        if arr.shape != (self.resolution, self.resolution, self.num_channels):
            h, w, c = arr.shape
            raise DatasetError(f"{self.path}: {name} is {w}x{h}x{c} but the dataset is {self.resolution}x"
                               f"{self.resolution}x{self.num_channels}; re-create it with `adagan dataset`")
        return arr.transpose(2, 0, 1)


def open_dataset(spec: str | os.PathLike | None, *, resolution: int | None = None, use_labels: bool = False,
                 mirror: bool = False, subset: int | None = None, seed: int = 0, log=None) -> ImageDataset:
    """Open a dataset zip or folder, or 'builtin:twemoji[/GROUP[+GROUP]][@RES]' (None = builtin:twemoji).

    resolution: for built-ins, the size to use (default 32); for other data, checked against the images.
    log: callable for one-line progress notes (default: stderr), used for the built-in's first conversion.
    """
    spec_s = "builtin:twemoji" if spec is None or str(spec).strip() == "" else str(spec)
    say = log if log is not None else (lambda msg: print(msg, file=sys.stderr, flush=True))
    if spec_s.startswith("builtin:"):
        path = builtin_path(spec_s, resolution, log=say, progress=sys.stderr.isatty())
        return ImageDataset(path, name=resolved_builtin(spec_s, resolution).stem, use_labels=use_labels,
                            mirror=mirror, subset=subset, seed=seed)
    path = Path(spec_s).expanduser()
    if not path.exists():
        raise DatasetError(f"dataset {spec_s!r} does not exist; pass a zip made by `adagan dataset`, a "
                           "folder of images, or builtin:twemoji")
    if not path.is_file() and not path.is_dir():
        raise DatasetError(f"dataset {spec_s!r} is not a regular file or folder")
    if path.is_file() and not zipfile.is_zipfile(path):
        raise DatasetError(f"dataset {spec_s!r} is not a zip or folder; convert it with "
                           f"`adagan dataset --source {spec_s} --dest {_sanitize(path.stem)}.zip`")
    ds = ImageDataset(path, use_labels=use_labels, mirror=mirror, subset=subset, seed=seed)
    if resolution is not None and resolution != ds.resolution:
        raise DatasetError(f"{ds.name} is {ds.resolution}x{ds.resolution} but resolution {resolution} was "
                           "asked for; omit --resolution, or re-create the dataset with "
                           f"`adagan dataset --source ... --resolution {resolution}`")
    return ds
