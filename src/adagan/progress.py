"""Progress for long loops: a tqdm bar on a terminal, a plain line now and then elsewhere.

Where the output is not a terminal (nohup, CI logs, a notebook) a redrawn bar is either nothing or a
flood of carriage returns, so there `progress()` prints one plain line at most every `INTERVAL_S`
seconds instead: `generated: 4,096/10,000 img (41%), 1m02s, ETA 1m29s`. A loop that ends within the
first interval prints nothing. This module imports nothing else from adagan.
"""

from __future__ import annotations

import sys
import time

INTERVAL_S = 30.0  # seconds between two plain lines (docs/using.md)


def _fmt(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}h{s // 60 % 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class PlainProgress:
    """The part of tqdm's interface the loops use (update, clear, close, a context manager), printing a plain
    line to `file` when `interval` seconds have passed since the start, the last line or the last clear()."""

    def __init__(self, total: int | None = None, *, desc: str = "", unit: str = "img", initial: int = 0,
                 file=None, interval: float | None = None, clock=time.monotonic):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.file = file
        self.interval = INTERVAL_S if interval is None else interval
        self._clock = clock
        self._start_n, self._start = initial, clock()
        self._last = self._start

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self._clock()
        if now - self._last >= self.interval:
            self._last = now
            print(self.line(now), file=self.file or sys.stderr, flush=True)

    def line(self, now: float) -> str:
        elapsed = now - self._start
        text = f"{self.desc}: {self.n:,}" if self.desc else f"{self.n:,}"
        if self.total:
            text += f"/{self.total:,} {self.unit} ({100 * self.n / self.total:.0f}%), {_fmt(elapsed)}"
            done = self.n - self._start_n
            if 0 < done and self.n < self.total:
                text += f", ETA {_fmt(elapsed * (self.total - self.n) / done)}"
        else:
            text += f" {self.unit}, {_fmt(elapsed)}"
        return text

    def clear(self) -> None:
        """Something else was just printed (a tick line): wait a whole interval before the next line."""
        self._last = self._clock()

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress(total: int | None = None, *, desc: str = "", unit: str = "img", initial: int = 0,
             show: bool | None = None, file=None, **tqdm_kw):
    """A tqdm bar when `show` (None: when `file`, default stderr, is a terminal), else PlainProgress lines;
    show=False is silence (a tqdm that draws nothing)."""
    from tqdm import tqdm

    out = file or sys.stderr
    if show is None:
        show = out.isatty() if hasattr(out, "isatty") else False
        if not show:
            return PlainProgress(total, desc=desc, unit=unit, initial=initial, file=out)
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=not show, file=out, **tqdm_kw)
