"""One file over http(s), with urllib only: a progress bar, resume, a timeout, and an atomic result.

The body goes to `<dest>.part`; `<dest>.part.json` notes the URL, the server's validator (ETag or
Last-Modified) and the expected size. An interrupted download (a dropped connection, a stalled server,
Ctrl-C) keeps the part; the next call asks for the rest (`Range: bytes=N-`, with `If-Range` so a changed
file comes back whole) and appends it if the server answers 206 from byte N, else starts again. Only a
complete body (the size the server announced) is renamed to `dest`, so `dest` is never half a file.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from adagan.errors import CheckpointError

TIMEOUT = 60.0  # seconds without a byte (connect or read) before a download counts as stalled
CHUNK = 1 << 20
MAX_BYTES = 4 << 30  # the official pickles are at most ~400 MB; a larger body is refused (disk safety)


def manual_route(name: str) -> str:
    """The way round a missing network, for error messages that name the URL already."""
    return (f"without a network, download it yourself, then run `adagan import-official --source FILE.pkl "
            f"--dest {name}.safetensors` and pass {name}.safetensors instead")


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def _read_part_meta(part: Path, url: str) -> dict | None:
    meta_path = Path(f"{part}.json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(meta, dict) and meta.get("url") == url and part.is_file()
    return meta if ok else None


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    Path(f"{part}.json").unlink(missing_ok=True)


def _open(url: str, offset: int, validator: str | None, timeout: float, manual: str):
    from adagan import __version__

    headers = {"User-Agent": f"adagan/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return None  # the part is not a prefix the server knows: start again
        hint = "; check the name or URL" if e.code in (403, 404, 410) else ""
        raise CheckpointError(f"cannot download {url}: HTTP {e.code} {e.reason}{hint}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        why = getattr(e, "reason", None) or e
        raise CheckpointError(f"cannot download {url} ({why}); {manual}") from None


def _start(url: str, part: Path, timeout: float, manual: str):
    """Open the URL, resuming the part when it can. Returns (response, offset, total)."""
    meta = _read_part_meta(part, url)
    if meta is None:
        _discard(part)
    offset = part.stat().st_size if meta is not None else 0
    resp = _open(url, offset, meta and meta.get("validator"), timeout, manual)
    if resp is not None and offset and resp.status == 206:
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", "").strip())
        total = int(m.group(3)) if m and m.group(3) != "*" else None
        if m and int(m.group(1)) == offset and total == meta.get("total"):
            return resp, offset, total
    if offset:  # no usable range answer: the part goes, and the whole body comes (it may be coming already)
        _discard(part)
        if resp is None or resp.status != 200:
            if resp is not None:
                resp.close()
            resp = _open(url, 0, None, timeout, manual)
    length = resp.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
    Path(f"{part}.json").write_text(json.dumps({"url": url, "validator": validator, "total": total}))
    return resp, 0, total


class _Progress:
    """A tqdm bar on a terminal; otherwise one line at the start (and the caller's line at the end)."""

    def __init__(self, url: str, name: str, total: int | None, offset: int, log):
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=name, file=sys.stderr, leave=False, dynamic_ncols=True)
        verb = f"Resuming at {_mb(offset)} the download of" if offset else "Downloading"
        log(f"{verb} {url} ({_mb(total)})")

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _copy_body(resp, part: Path, url: str, offset: int, total: int | None, manual: str, log) -> int:
    """Append the response body to the part; returns the part's size. A failure keeps the part."""
    done, progress = offset, _Progress(url, part.name[: -len(".part")], total, offset, log)
    try:
        with resp, open(part, "ab" if offset else "wb") as f:
            while True:
                try:
                    chunk = resp.read1(CHUNK)  # what has arrived: a stall keeps every byte before it
                except (OSError, http.client.HTTPException) as e:  # a timeout is an OSError
                    why = "no data for the timeout" if isinstance(e, TimeoutError) else type(e).__name__
                    raise CheckpointError(f"the download of {url} stopped at {_mb(done)} of {_mb(total)} ({why}); "
                                          f"run the same command again to resume it, or {manual}") from None
                if not chunk:
                    break
                f.write(chunk)
                done += len(chunk)
                progress.update(len(chunk))
                if done > MAX_BYTES or (total is not None and done > total):
                    _discard(part)
                    raise CheckpointError(f"{url} sends more than {_mb(total or MAX_BYTES)}; refused")
    finally:
        progress.close()
    return done


def download(url: str, dest: str | os.PathLike, *, log=print, manual: str = "", notice: str = "",
             timeout: float | None = None) -> dict:
    """Download `url` to `dest` (atomically; resuming a part an earlier call left). Returns the record
    {url, size, sha256, downloaded} (UTC time). notice: logged once the server has answered."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    timeout = TIMEOUT if timeout is None else timeout
    manual = manual or manual_route(dest.stem)
    resp, offset, total = _start(url, part, timeout, manual)
    if notice:
        log(notice)
    if total is not None:
        if total > MAX_BYTES:
            resp.close()
            raise CheckpointError(f"{url} is {_mb(total)}, more than any official network; refused")
        free = shutil.disk_usage(part.parent).free
        if total - offset > free:
            resp.close()
            raise CheckpointError(f"{url} needs {_mb(total - offset)} but {part.parent} has {_mb(free)} free; "
                                  "free some space or set ADAGAN_CACHE to another disk")
    size = _copy_body(resp, part, url, offset, total, manual, log)
    if total is not None and size != total:
        raise CheckpointError(f"the download of {url} ended early at {_mb(size)} of {_mb(total)}; run the same "
                              f"command again to resume it, or {manual}")
    sha = hashlib.sha256()
    with open(part, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            sha.update(block)
    os.replace(part, dest)
    Path(f"{part}.json").unlink(missing_ok=True)
    log(f"Downloaded {url}: {size:,} bytes, sha256 {sha.hexdigest()}")
    return {"url": url, "size": size, "sha256": sha.hexdigest(),
            "downloaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
