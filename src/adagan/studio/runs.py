"""Reading training run directories while training may still be writing them.

Everything here only reads. A run directory (docs/training.md, "What a run writes") is any folder that
holds `stats.jsonl` or a `network-snapshot-*.safetensors`. Files are re-read only when their
(mtime, size) changes; `stats.jsonl` and `metric-*.jsonl` are read incrementally from the last
complete line, so a line being written (no newline yet) or cut short by a kill is skipped instead
of breaking the page. A file shorter than last time (resume rewrites stats.jsonl) is read again.

Every file read here, and every path that comes from a request, must resolve (symlinks followed)
to a regular file inside the served root: `inside` checks it, and files are opened by their resolved
path without following a symlink put there meanwhile. A `log.txt` or `config.json` linked to a file
outside the folder reads as missing (docs/studio.md, "Safety and robustness").
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SNAPSHOT_RE = re.compile(r"^network-snapshot-(\d+)\.safetensors$")
GRID_RE = re.compile(r"^fakes(\d+)\.png$")
METRIC_RE = re.compile(r"^metric-(.+)\.jsonl$")

# What the page may fetch through /files/: images and the small text files a run writes.
SERVED_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".txt", ".json", ".jsonl"})

# A run counts as running while stats.jsonl or log.txt changed within this many seconds, or within
# 3 ticks when its ticks are slower than that.
RUNNING_WINDOW_S = 120.0
MAX_DEPTH = 2  # run directories are looked for at root, root/RUN and root/STUDY/RUN
MAX_DIRS = 2000  # stop scanning a huge tree (someone pointed the studio at their home folder)
SCAN_TTL_S = 2.0  # a scan is reused this long: many tabs polling at once share one directory listing
LOG_TAIL_BYTES = 4096
STATES = ("running", "done", "stopped", "idle")


class NotFound(Exception):
    """A requested file or run does not exist under the root, or lies outside it (HTTP 404)."""


def inside(root: Path, path: Path) -> Path | None:
    """path resolved (symlinks followed) if it is an existing regular file under the resolved `root`;
    else None. Absolute paths, `..` and symlinks leading out of the root all resolve outside it."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, a name too long
        return None
    return real if real.is_relative_to(root) and real.is_file() else None


def open_inside(real: Path):
    """Open a path that `inside` returned, refusing a symlink swapped in since (O_NOFOLLOW: ELOOP)."""
    return os.fdopen(os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)), "rb")


def safe_path(root: Path, rel: str, *, suffixes=None) -> Path:
    """root/rel resolved, if it is an existing file inside root with an allowed suffix; else NotFound."""
    root = root.resolve()
    if not rel or "\x00" in rel:
        raise NotFound(rel)
    path = inside(root, root / rel)
    if path is None or (suffixes is not None and path.suffix.lower() not in suffixes):
        raise NotFound(rel)
    return path


def stamp(path: Path) -> tuple[int, int] | None:
    """(mtime_ns, size), or None for a missing file: what the caches key on."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def finite_or_none(v):
    """A number JSON can carry: NaN and inf become None (JSON has no NaN)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return v if math.isfinite(v) else None


@dataclass
class _JsonlState:
    stamp: tuple[int, int] | None = None
    offset: int = 0  # bytes consumed, up to and including the last complete line
    rows: tuple = ()


class JsonlReader:
    """The dict rows of a JSON-lines file under `root` that another process appends to; reads only
    what is new. A file that resolves outside root reads as missing."""

    def __init__(self, path: Path, root: Path):
        self.path, self.root = path, root
        self._state = _JsonlState()
        self._lock = threading.Lock()

    def rows(self) -> tuple[dict, ...]:
        with self._lock:
            real = inside(self.root, self.path)
            now = stamp(real) if real is not None else None
            st = self._state
            if now is None:
                self._state = _JsonlState()
                return ()
            if now == st.stamp:
                return st.rows
            if now[1] < st.offset:  # rewritten shorter: start over
                st = _JsonlState()
            try:
                with open_inside(real) as f:
                    f.seek(st.offset)
                    data = f.read()
            except OSError:
                return st.rows
            end = data.rfind(b"\n") + 1  # a last line without its newline is still being written
            new = []
            for line in data[:end].splitlines():
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue  # a line cut short by a kill
                if isinstance(row, dict):
                    new.append(row)
            # The stamp is taken before reading: if the file grew meanwhile, the next call reads on.
            self._state = _JsonlState(stamp=now, offset=st.offset + end, rows=st.rows + tuple(new))
            return self._state.rows


class _FileCache:
    """A small parsed file (config.json, the tail of log.txt) under `root`, re-read only when its stamp
    changes; one that resolves outside root reads as missing."""

    def __init__(self, path: Path, parse, root: Path):
        self.path, self.parse, self.root = path, parse, root
        self._stamp, self._value = None, None
        self._lock = threading.Lock()

    def get(self):
        with self._lock:
            real = inside(self.root, self.path)
            now = stamp(real) if real is not None else None
            if now != self._stamp:
                try:
                    self._value = self.parse(real) if now is not None else None
                except (OSError, ValueError):
                    self._value = None  # being replaced right now; the next poll reads it
                self._stamp = now
            return self._value


def _read_config(path: Path) -> dict | None:
    with open_inside(path) as f:
        value = json.loads(f.read().decode("utf-8"))
    return value if isinstance(value, dict) else None


def _read_log_tail(path: Path) -> str:
    with open_inside(path) as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
        lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


class RunDir:
    """One run directory: its status, curves, grids and snapshots, each read lazily and cached."""

    def __init__(self, root: Path, path: Path):
        self.root, self.path = root, path
        self.id = path.relative_to(root).as_posix()  # "." when the root itself is the run
        self.stats = JsonlReader(path / "stats.jsonl", root)
        self._config = _FileCache(path / "config.json", _read_config, root)
        self._log_tail = _FileCache(path / "log.txt", _read_log_tail, root)
        self._metrics: dict[str, JsonlReader] = {}
        self._listing: tuple[tuple[int, int] | None, dict] = (None, {})
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.path.name if self.id != "." else self.path.resolve().name

    def _rel(self, p: Path) -> str:
        return p.relative_to(self.root).as_posix()

    def _stamp(self, name: str) -> tuple[int, int] | None:
        """The stamp of a file of this run, None when it is missing or resolves outside the root."""
        real = inside(self.root, self.path / name)
        return stamp(real) if real is not None else None

    def listing(self) -> dict:
        """Snapshots, grids and metric files, re-listed when the directory's mtime changes (a file
        written by rename, as training does, changes it)."""
        with self._lock:
            now = stamp(self.path)
            if now is not None and now == self._listing[0]:
                return self._listing[1]
            snaps, grids, metrics = [], [], []
            try:
                entries = sorted(os.scandir(self.path), key=lambda e: e.name)
            except OSError:
                entries = []
            entries = [e for e in entries if SNAPSHOT_RE.match(e.name) or GRID_RE.match(e.name)
                       or METRIC_RE.match(e.name) or e.name == "fakes_init.png"]
            entries = [e for e in entries if inside(self.root, Path(e.path)) is not None]  # no link out
            for e in entries:
                if (m := SNAPSHOT_RE.match(e.name)) is not None:
                    snaps.append({"kimg": int(m.group(1)), "file": self._rel(Path(e.path))})
                elif (m := GRID_RE.match(e.name)) is not None:
                    grids.append({"kimg": int(m.group(1)), "label": f"{int(m.group(1))} kimg",
                                  "file": self._rel(Path(e.path))})
                elif e.name == "fakes_init.png":
                    grids.insert(0, {"kimg": None, "label": "init", "file": self._rel(Path(e.path))})
                elif (m := METRIC_RE.match(e.name)) is not None:
                    metrics.append(m.group(1))
            snaps.sort(key=lambda s: s["kimg"])
            grids.sort(key=lambda g: -1 if g["kimg"] is None else g["kimg"])
            value = {"snapshots": snaps, "grids": grids, "metric_files": metrics,
                     "reals": self._rel(self.path / "reals.png") if self._stamp("reals.png") else None}
            self._listing = (now, value)
            return value

    def config(self) -> dict:
        return self._config.get() or {}

    def status(self, now: float | None = None) -> dict:
        """kimg, sec/kimg, ETA, p and r_t of the newest tick, and whether training looks alive."""
        now = time.time() if now is None else now
        rows = self.stats.rows()
        last = rows[-1] if rows else {}
        cfg = self.config()
        kimg = finite_or_none(last.get("Progress/kimg"))
        spk = finite_or_none(last.get("Timing/sec_per_kimg"))
        target = finite_or_none(cfg.get("kimg"))
        eta = None
        if kimg is not None and spk is not None and target is not None:
            eta = max(0.0, (target - kimg) * spk)
            max_minutes, time_s = finite_or_none(cfg.get("max_minutes")), finite_or_none(last.get("Progress/time_s"))
            if max_minutes is not None and time_s is not None:  # as the tick line computes it
                eta = max(0.0, min(eta, max_minutes * 60 - time_s))
        changed = [s[0] / 1e9 for s in (self._stamp("stats.jsonl"), self._stamp("log.txt")) if s]
        age = now - max(changed) if changed else None
        tick_s = finite_or_none(last.get("Timing/sec_per_tick")) or 0.0
        tail = self._log_tail.get() or ""
        if tail.startswith("Done:"):
            state = "done"
        elif tail.startswith("Stopped"):
            state = "stopped"
        elif age is not None and age < max(RUNNING_WINDOW_S, 3 * tick_s):
            state = "running"
        else:
            state = "idle"
        aug = cfg.get("augment") if isinstance(cfg.get("augment"), dict) else {}
        return {"state": state, "kimg": kimg, "target_kimg": target, "tick": last.get("Progress/tick"),
                "sec_per_kimg": spk, "eta_s": eta if state == "running" else None,  # none for a killed run
                "p": finite_or_none(last.get("Progress/augment")), "r_t": finite_or_none(last.get("Progress/r_t")),
                "updated_s_ago": None if age is None else round(age, 1), "last_log": tail[:300],
                "aug": aug.get("mode"), "augpipe": aug.get("augpipe"), "data": cfg.get("data"),
                "cfg": cfg.get("cfg")}

    def summary(self) -> dict:
        listing = self.listing()
        return {"id": self.id, "name": self.name, "status": self.status(),
                "snapshots": len(listing["snapshots"]),
                "newest_grid": listing["grids"][-1]["file"] if listing["grids"] else None}

    def series(self) -> dict:
        """Every numeric stat as a column against kimg ({"kimg": [...], "series": {key: [...]}})."""
        rows = self.stats.rows()
        keys = sorted({k for r in rows for k, v in r.items() if isinstance(v, int | float) and not isinstance(v, bool)}
                      - {"Progress/kimg"})
        kimg = [finite_or_none(r.get("Progress/kimg")) for r in rows]
        return {"kimg": kimg, "series": {k: [finite_or_none(r.get(k)) for r in rows] for k in keys}}

    def metrics(self) -> dict[str, list[list[float]]]:
        """metric name (e.g. fid1k) -> [[kimg, value], ...] from metric-*.jsonl."""
        out: dict[str, list[list[float]]] = {}
        for name in self.listing()["metric_files"]:
            reader = self._metrics.setdefault(name, JsonlReader(self.path / f"metric-{name}.jsonl", self.root))
            for row in reader.rows():
                kimg, results = finite_or_none(row.get("kimg")), row.get("results")
                if kimg is None or not isinstance(results, dict):
                    continue
                for key, value in results.items():
                    if finite_or_none(value) is not None:
                        out.setdefault(key, []).append([kimg, value])
        return out

    def detail(self) -> dict:
        listing = self.listing()
        return {"id": self.id, "name": self.name, "status": self.status(), **self.series(),
                "metrics": self.metrics(), "snapshots": listing["snapshots"], "grids": listing["grids"],
                "reals": listing["reals"], "config": self.config()}

    def version(self) -> str:
        """Changes whenever anything `detail` shows may have changed (an ETag): file stamps, and the
        state (a running run turns idle by time passing). No clock: a finished run's ETag stays put,
        and `updated_s_ago` is advanced by the page itself between answers."""
        parts = [stamp(self.path), self._stamp("stats.jsonl"), self._stamp("log.txt"), self._stamp("config.json")]
        parts += [self._stamp(f"metric-{m}.jsonl") for m in self.listing()["metric_files"]]
        parts.append(STATES.index(self.status()["state"]))  # an int: str hashes differ between processes
        return f"{hash(tuple(parts)) & 0xFFFFFFFFFFFF:x}"


def _is_run(path: Path) -> bool:
    if (path / "stats.jsonl").is_file():
        return True
    try:
        return any(SNAPSHOT_RE.match(e.name) for e in os.scandir(path))
    except OSError:
        return False


class RunIndex:
    """The run directories under a root, rescanned at most every SCAN_TTL_S seconds."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self._runs: dict[str, RunDir] = {}
        self._scanned = -math.inf
        self._lock = threading.Lock()

    def runs(self) -> list[RunDir]:
        with self._lock:
            if time.monotonic() - self._scanned > SCAN_TTL_S:
                found = self._scan()
                # Keep the existing RunDir objects (and their caches) for runs seen before.
                self._runs = {rid: self._runs.get(rid) or RunDir(self.root, path) for rid, path in found.items()}
                self._scanned = time.monotonic()
            return list(self._runs.values())

    def _scan(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        frontier, seen = [(self.root, 0)], 0
        while frontier and seen < MAX_DIRS:
            path, depth = frontier.pop(0)
            seen += 1
            if _is_run(path):
                found[path.relative_to(self.root).as_posix()] = path
                continue  # a run's subfolders are its own business
            if depth >= MAX_DEPTH:
                continue
            try:
                subdirs = sorted(e.path for e in os.scandir(path)
                                 if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))
            except OSError:
                continue
            frontier.extend((Path(p), depth + 1) for p in subdirs)
        return dict(sorted(found.items()))

    def get(self, run_id: str) -> RunDir:
        for run in self.runs():
            if run.id == run_id:
                return run
        raise NotFound(run_id)

    def networks(self) -> list[dict]:
        """Network files the Generator tab can load: every run's snapshots, newest first, then other
        .safetensors files in the root (an imported or hand-copied network); training states excluded."""
        out = []
        for run in self.runs():
            for snap in reversed(run.listing()["snapshots"]):
                out.append({"file": snap["file"], "run": run.id, "label": f"{run.name} @ {snap['kimg']} kimg",
                            "name": run.name, "kimg": snap["kimg"]})
        listed = {n["file"] for n in out}
        try:
            loose = sorted(e.name for e in os.scandir(self.root) if e.name.endswith(".safetensors")
                           and not e.name.startswith("training-state-") and inside(self.root, Path(e.path)))
        except OSError:
            loose = []
        out += [{"file": name, "run": None, "label": name, "name": name, "kimg": None}
                for name in loose if name not in listed]
        return out
