"""Reading pickles a user hands us without running code or allocating what the file merely claims.

A restricted `find_class` (official.py, data/sources.py) stops code execution, but pickle's own opcodes
can still ask for memory: a bytes opcode allocates its declared length before reading it, a frame is
read in one piece, a memo index grows the memo to that size, and numpy allocates an array's declared
shape (object arrays: one pointer per element) before filling it. `scan` walks the opcodes first
without building anything and refuses declared lengths past the end of the data and absurd memo
indices, so the real load allocates at most about the file's size; `numpy_globals` rebuilds plain
(non-object) arrays only. Like errors.py and cache.py, this module imports nothing else from adagan.
"""

from __future__ import annotations

import io
import pickle
import pickletools

import numpy as np

MAX_MEMO = 10_000_000  # memo slots a pickle may use (official network pickles use a few thousand)
_COUNTED = {"BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
            "BYTEARRAY8", "BINSTRING", "SHORT_BINSTRING", "LONG4", "LONG1"}
_MEMO_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


class _Bounded:
    """A read-only view of a file that never reads (or allocates) past its end: read(n) returns at most
    the bytes that are left, so pickletools sees a short read instead of allocating n."""

    def __init__(self, f, end: int):
        self.f, self.end = f, end

    def read(self, n: int = -1) -> bytes:
        left = max(self.end - self.f.tell(), 0)
        return self.f.read(left if n is None or n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self.f.readline(max(self.end - self.f.tell(), 0))

    def tell(self) -> int:
        return self.f.tell()


def scan(f, end: int | None = None) -> None:
    """Walk one pickle in the seekable binary file `f` from its current position to its STOP without building
    anything; ValueError when a declared length runs past `end` (default: the end of the data), a memo index
    is absurd, or the opcodes are malformed. `f` is left after the STOP, ready for the next pickle."""
    if end is None:
        pos = f.tell()
        end = f.seek(0, io.SEEK_END)
        f.seek(pos)
    try:
        for op, arg, pos in pickletools.genops(_Bounded(f, end)):
            if op.name == "FRAME" and arg > end - f.tell():
                raise ValueError(f"a frame of {arg:,} bytes at byte {pos}, past the end of the data")
            if op.name in _MEMO_OPS and isinstance(arg, int) and not 0 <= arg <= MAX_MEMO:
                raise ValueError(f"memo index {arg:,} at byte {pos}")
    except ValueError:
        raise
    except (EOFError, pickle.UnpicklingError, TypeError, OverflowError, KeyError, AttributeError) as e:
        raise ValueError(f"malformed pickle ({type(e).__name__}: {e})") from None


def scan_all(data: bytes, count: int) -> None:
    """`scan` `count` pickles written one after another into `data`."""
    f = io.BytesIO(data)
    for _ in range(count):
        scan(f, len(data))


def _dtype(*args):
    dt = np.dtype(*args)
    if dt.hasobject:  # object arrays rebuild Python objects and allocate before checking their contents
        raise pickle.UnpicklingError("refusing a numpy array of Python objects")
    return dt


class _Array(np.ndarray):
    """What numpy's _reconstruct builds here: __setstate__ checks the declared shape against the data given."""

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[4], bytes | bytearray)):
            raise pickle.UnpicklingError("refusing a numpy array that is not plain data")
        _, shape, dtype, _, raw = state
        count = 1
        for n in shape:
            if not isinstance(n, int) or n < 0:
                raise pickle.UnpicklingError(f"bad numpy shape {shape}")
            count *= n
        if not isinstance(dtype, np.dtype) or dtype.hasobject or count * dtype.itemsize != len(raw):
            raise pickle.UnpicklingError(f"a numpy array of shape {shape} whose data has {len(raw):,} bytes")
        super().__setstate__(state)


def _reconstruct(subtype, shape, dtype):
    """numpy's `_reconstruct(ndarray, (0,), dtype)`: an empty array that __setstate__ then fills. numpy always
    declares no elements here; a file that declares any (e.g. 10^6 x 10^6) would have them allocated before its
    data is seen, so it is refused (the real shape comes with the data, checked in _Array.__setstate__)."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("refusing a numpy array subclass")
    if not (isinstance(shape, tuple) and len(shape) <= 64 and all(isinstance(n, int) and 0 <= n < 2**31
                                                                   for n in shape) and 0 in shape):
        raise pickle.UnpicklingError(f"a numpy array that declares shape {str(shape)[:80]} before its data "
                                     "(numpy's own pickles declare an empty one)")
    return np.ndarray.__new__(_Array, shape, _dtype(dtype))


def numpy_globals() -> dict[tuple[str, str], object]:
    """Globals that rebuild plain numpy arrays, dtypes and scalars (numpy 1 and 2 module names)."""
    out = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): _dtype}
    scalar = np.float64(0).__reduce__()[0]
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        out[(mod, "_reconstruct")] = _reconstruct
        out[(mod, "scalar")] = scalar
    return out
