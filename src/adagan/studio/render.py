"""Server-side rendering for the studio: the same library calls as `adagan generate` / `adagan mix`.

One worker thread runs every render, so the event loop stays free to answer polling tabs while a
generator works, and torch is never entered by two requests at once (on a 2-core CPU two renders in
parallel are no faster than one after the other). Loaded generators are kept in a small LRU keyed by
the file's (path, mtime, size), so a snapshot rewritten by a resumed run is loaded afresh. Finished
PNGs are kept in an LRU too: many tabs asking for the same picture cost one render.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from adagan.errors import AdaganError, CheckpointError, ConfigError
from adagan.studio.runs import stamp

MAX_IMAGES = 64  # images per request (a grid, a mixing table, an interpolation strip)
MAX_QUEUE = 8  # renders waiting for the worker; more are refused as busy (HTTP 503) instead of piling up


class Busy(Exception):
    """Too many renders are waiting; the page retries."""


def png_bytes(img: np.ndarray) -> bytes:
    """uint8 [H, W, C] -> PNG file bytes (fast compression: these are thrown away after viewing)."""
    from adagan.inference import to_pil

    buf = io.BytesIO()
    to_pil(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class LRU:
    """A thread-safe least-recently-used dict with a fixed number of entries."""

    def __init__(self, size: int):
        self.size = size
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._d:
                return None
            self._d.move_to_end(key)
            return self._d[key]

    def put(self, key, value) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)


class Renderer:
    """Generators and their pictures; `run(fn, *args)` executes fn on the single render thread."""

    def __init__(self, *, device: str | None = "cpu", max_images: int = MAX_IMAGES, max_queue: int = MAX_QUEUE,
                 generators: int = 3, pngs: int = 64):
        self.device = device
        self.max_images = max_images
        self.max_queue = max_queue
        self._generators = LRU(generators)
        self._pngs = LRU(pngs)
        self._datasets = LRU(2)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adagan-studio-render")
        self._pending = 0
        self._lock = threading.Lock()

    async def run(self, fn, *args, **kwargs):
        with self._lock:
            if self._pending >= self.max_queue:
                raise Busy()
            self._pending += 1
        try:
            future = self._executor.submit(fn, *args, **kwargs)
            return await asyncio.wrap_future(future)
        finally:
            with self._lock:
                self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- generators --------------------------------------------------------------------------------

    def generator(self, path: Path):
        """G_ema of a network file, loaded once per (path, mtime, size). CheckpointError if unreadable."""
        from adagan.inference import load_generator

        key = (str(path), stamp(path))
        G = self._generators.get(key)
        if G is None:
            try:
                G = load_generator(path, self.device)
            except AdaganError:
                raise
            except Exception as e:  # damaged tensor data past a readable header, and the like
                raise CheckpointError(f"{path.name} cannot be loaded ({type(e).__name__}: {e}); the file is "
                                      "damaged or still being written") from None
            self._generators.put(key, G)
        return G

    def network_info(self, path: Path) -> dict:
        """What the page needs to build its controls; loads the generator (so a corrupt file shows here)."""
        from adagan.io import read_metadata
        from adagan.netfiles import started_from, trained_kimg

        G = self.generator(path)
        meta = read_metadata(path)
        kimg = meta.get("meta.kimg")
        return {"resolution": G.img_resolution, "channels": G.img_channels, "c_dim": G.c_dim, "num_ws": G.num_ws,
                "z_dim": G.z_dim, "w_dim": G.w_dim, "kimg": kimg if isinstance(kimg, int | float) else None,
                "params": sum(p.numel() for p in G.parameters()),
                # what it started from (training/state.Origin) and its training in all (None: unknown)
                "origin": started_from(meta), "total_kimg": trained_kimg(meta)}

    # -- pictures ----------------------------------------------------------------------------------

    def _cached(self, key, make) -> tuple[bytes, float]:
        """(PNG bytes, milliseconds it took to render; 0 when it came from the cache)."""
        hit = self._pngs.get(key)
        if hit is not None:
            return hit, 0.0
        t0 = time.perf_counter()
        data = png_bytes(make())
        ms = (time.perf_counter() - t0) * 1000
        self._pngs.put(key, data)
        return data, ms

    def _check_count(self, n: int) -> None:
        if n < 1:
            raise ConfigError("nothing to render: give at least one seed")
        if n > self.max_images:
            raise ConfigError(f"{n} images asked for; the studio renders at most {self.max_images} per picture")

    def grid(self, path: Path, seeds: list[int], *, psi: float, noise_mode: str, class_idx: int | None,
             cols: int | None = None) -> tuple[bytes, float]:
        """A grid of one image per seed, as `adagan generate --grid` writes it."""
        from adagan import inference as inf

        self._check_count(len(seeds))

        def make():
            G = self.generator(path)
            images = inf.generate(G, seeds, c=class_idx, truncation_psi=psi, noise_mode=noise_mode)
            return inf.make_grid(images, cols)

        return self._cached(("grid", str(path), stamp(path), tuple(seeds), psi, noise_mode, class_idx, cols), make)

    def mix(self, path: Path, rows: list[int], cols: list[int], styles: list[int], *, psi: float, noise_mode: str,
            class_idx: int | None) -> tuple[bytes, float]:
        """The style-mixing table of `adagan mix`: row seeds with the `styles` layers of the column seeds."""
        from adagan import inference as inf

        self._check_count((len(rows) + 1) * (len(cols) + 1))

        def make():
            return inf.style_mix(self.generator(path), rows, cols, styles, c=class_idx, truncation_psi=psi,
                                 noise_mode=noise_mode)

        return self._cached(
            ("mix", str(path), stamp(path), tuple(rows), tuple(cols), tuple(styles), psi, noise_mode, class_idx), make)

    def strip(self, path: Path, seeds: list[int], steps: int, *, psi: float, noise_mode: str,
              class_idx: int | None) -> tuple[bytes, float]:
        """A row of frames walking from the first seed through the others to the last: the path of
        `adagan video` (Catmull-Rom in W) cut open before it loops back."""
        from adagan import inference as inf

        if len(seeds) < 2:
            raise ConfigError("an interpolation strip needs two seeds: pin at least two images")
        if steps < 1:
            raise ConfigError("steps between seeds must be at least 1")
        n = (len(seeds) - 1) * steps + 1
        self._check_count(n)

        def make():
            G = self.generator(path)
            c = inf.make_labels(G, class_idx, 1, next(G.parameters()).device)
            key_ws = inf.seeds_to_ws(G, seeds, c=c, truncation_psi=psi)
            ws = inf.interpolate_ws(key_ws, steps)[:n]
            return inf.make_grid(inf.to_uint8(inf.synthesize(G, ws, noise_mode=noise_mode)), cols=n)

        return self._cached(("strip", str(path), stamp(path), tuple(seeds), steps, psi, noise_mode, class_idx), make)

    def augment(self, config: dict, p: float, *, num: int = 8, rows: int = 3, seed: int = 0) -> tuple[bytes, float]:
        """What D sees at probability p (`adagan augment-preview`'s grid) on the run's own data and pipe."""
        from adagan.augment import AUGPIPES
        from adagan.augment.preview import augment_grid

        if not 0 <= p <= 1:
            raise ConfigError(f"p {p} must be in 0..1")
        self._check_count(num * (rows + 1))
        data = config.get("data") or "builtin:twemoji"
        augpipe = (config.get("augment") or {}).get("augpipe") or "bgc"
        if augpipe not in AUGPIPES:
            raise ConfigError(f"this run's augpipe {augpipe!r} is unknown to this adagan")
        resolution = (config.get("G") or {}).get("img_resolution")

        def make():
            ds = self._dataset(data, resolution)
            idx = np.random.default_rng(seed).choice(len(ds), size=min(num, len(ds)), replace=False)
            imgs, _ = ds.get_batch(sorted(idx.tolist()))
            return np.asarray(augment_grid(imgs.float() / 127.5 - 1, augpipe, p, rows=rows, seed=seed))

        return self._cached(("augment", data, resolution, augpipe, p, num, rows, seed), make)

    def _dataset(self, data: str, resolution: int | None):
        from adagan.data import open_dataset

        key = (data, resolution)
        ds = self._datasets.get(key)
        if ds is None:
            try:
                ds = open_dataset(data, resolution=resolution, log=lambda msg: None)
            except AdaganError:
                raise
            except OSError as e:
                raise ConfigError(f"cannot open this run's data {data!r}: {e}") from None
            self._datasets.put(key, ds)
        return ds
