"""Converting a source's images for the dataset tool, in parallel and within a memory budget.

`converter(...)` makes the function that turns one source item into the PNG bytes of the dataset (decode,
channels, crop or pad, resize); `ordered_map` runs it on a thread pool in order (Pillow releases the GIL
while decoding, resizing and compressing), holding at most MAX_BYTES_IN_FLIGHT bytes of images at once.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from adagan.data import images as I
from adagan.data.sources import Item
from adagan.files import to_pil

MAX_BYTES_IN_FLIGHT = 2**30  # encoded and decoded bytes of the images being converted at once, all threads


def converter(*, max_pixels: int, **options):
    """process(item) -> (png bytes, digest, native channels) or an I.Skip, within the bytes-in-flight budget."""
    budget = _Budget(MAX_BYTES_IN_FLIGHT)

    def process(item: Item):
        held = budget.acquire(_cost(item, max_pixels))
        try:
            return _convert_one(item, max_pixels=max_pixels, **options)
        except I.Skip as e:
            # Returned, not raised: drop its traceback and context, whose frames still hold the file's bytes
            # (hundreds of MB for a zip bomb's member) until the writer gets to this result.
            e.__traceback__ = e.__context__ = e.__cause__ = None
            return e
        except Exception as e:  # noqa: BLE001 - one bad file must not end the whole conversion
            return I.Skip(I.UNREADABLE, f"{type(e).__name__}: {e}")
        finally:
            budget.release(held)

    return process


def _convert_one(item: Item, *, resolution, channels, transform, resize_filter, upscale, background,
                 max_pixels):
    """-> (png bytes, pixel digest, native channel count). Raises Skip."""
    data = item.read()
    if isinstance(data, np.ndarray):
        im = to_pil(data)
    else:
        im = I.open_image(data, max_pixels=max_pixels, draft_size=resolution, transform=transform)
    native = I.image_channels(im.mode)
    im = I.to_channels(im, channels, background)
    im = I.reshape(im, resolution, transform=transform, resize_filter=resize_filter, upscale=upscale,
                   background=background)
    arr = I.to_array(im)
    digest = hashlib.blake2b(arr.tobytes(), digest_size=16, person=str(arr.shape).encode()[:16]).digest()
    return I.encode_png(arr), digest, native


class _Budget:
    """The bytes the conversion threads hold at once (zip bombs: many members of hundreds of MB each).
    `acquire(n)` waits until n more fit; an item larger than the whole budget waits until it is alone."""

    def __init__(self, total: int):
        self.total, self.used, self.cond = total, 0, threading.Condition()

    def acquire(self, n: int) -> int:
        n = min(max(int(n), 0), self.total)
        with self.cond:
            while self.used + n > self.total:
                self.cond.wait()
            self.used += n
        return n

    def release(self, n: int) -> None:
        with self.cond:
            self.used -= n
            self.cond.notify_all()


def _cost(item: Item, max_pixels: int) -> int:
    """Bytes converting `item` may hold: its file, plus its decoded pixels from the header (RGBA, and a
    converted copy); an image whose header does not say is counted at the pixel cap."""
    if item.head is None:  # arrays (MNIST, CIFAR): small
        return item.nbytes
    try:
        size = I.peek_size(item.head())
    except Exception:  # noqa: BLE001 - unreadable: the conversion reports it
        size = None
    pixels = size[0] * size[1] if size else max_pixels
    return item.nbytes + (8 * pixels if pixels <= max_pixels else 0)  # over the cap: refused before decoding


def ordered_map(fn, items: Iterable, workers: int) -> Iterator:
    """map(fn, items) on a thread pool, in order, with a bounded number of items in flight.

    Pillow releases the GIL while decoding, resizing and compressing, so threads use all cores."""
    if workers <= 1:
        yield from map(fn, items)
        return
    ex = ThreadPoolExecutor(workers, thread_name_prefix="adagan-prep")
    try:
        pending: collections.deque = collections.deque()
        it = iter(items)
        for x in it:
            pending.append(ex.submit(fn, x))
            if len(pending) >= 4 * workers:
                break
        while pending:
            fut = pending.popleft()
            nxt = next(it, _END)
            if nxt is not _END:
                pending.append(ex.submit(fn, nxt))
            yield fut.result()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


_END = object()
