"""Pretrained networks by name, URL or built-in name: one resolver that every command goes through.

A network argument (`--network`, `--resume`, `adagan info X`, ...) is one of:

- a file: an adagan `.safetensors` network (an existing path always wins over a name);
- `builtin:NAME`: a network shipped inside the package (`adagan/pretrained/NAME.safetensors`);
- a name of NVIDIA's StyleGAN2-ADA pretrained pickles (NAMES: the transfer-learning sources of the
  official train.py `--resume`, and the README's pretrained networks), or any http(s) URL of an
  official pickle.

Names and URLs are downloaded once into `<cache>/pretrained/` (adagan.cache, `$ADAGAN_CACHE`), imported
with the restricted unpickler of adagan.official (no code from the pickle runs) and kept as safetensors:
the second use needs no network and no import. NVIDIA's networks are under the NVIDIA Source Code License
(non-commercial); adagan only fetches them from NVIDIA's URLs when asked and never ships them
(docs/using.md "Pretrained networks").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from adagan.errors import CheckpointError
from adagan.files import atomic_write

NVIDIA_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_TRANSFER = NVIDIA_BASE + "transfer-learning-source-nets/"
# Official train.py `resume_specs` (the transfer-learning sources), then the official README's pretrained list.
NAMES: dict[str, str] = {
    "ffhq256": _TRANSFER + "ffhq-res256-mirror-paper256-noaug.pkl",
    "ffhq512": _TRANSFER + "ffhq-res512-mirror-stylegan2-noaug.pkl",
    "ffhq1024": _TRANSFER + "ffhq-res1024-mirror-stylegan2-noaug.pkl",
    "celebahq256": _TRANSFER + "celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl",
    "lsundog256": _TRANSFER + "lsundog-res256-paper256-kimg100000-noaug.pkl",
    "ffhq": NVIDIA_BASE + "ffhq.pkl",
    "metfaces": NVIDIA_BASE + "metfaces.pkl",
    "afhqcat": NVIDIA_BASE + "afhqcat.pkl",
    "afhqdog": NVIDIA_BASE + "afhqdog.pkl",
    "afhqwild": NVIDIA_BASE + "afhqwild.pkl",
    "brecahad": NVIDIA_BASE + "brecahad.pkl",
    "cifar10": NVIDIA_BASE + "cifar10.pkl",
}
NVIDIA_LICENSE = "https://nvlabs.github.io/stylegan2-ada-pytorch/license.html"
LICENSE_NOTE = ("Note: NVIDIA's pretrained StyleGAN2-ADA networks are licensed for non-commercial use only (NVIDIA "
                f"Source Code License, {NVIDIA_LICENSE}); adagan downloads them from NVIDIA at your request and "
                "never ships them.")
BUILTIN_PREFIX = "builtin:"
BUILTIN_NAMES = ("twemoji32",)
BUILTIN_DIR = Path(__file__).parent  # the package's own folder; tests point it elsewhere
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class Source:
    """Where a network argument points. kind: file | builtin | download (a name or a URL)."""

    spec: str  # as given
    kind: str
    path: Path  # the network file, or where the download will be kept
    url: str | None = None
    name: str | None = None  # the NAMES or builtin name; None for a file or a bare URL

    @property
    def label(self) -> str:
        """A short name for run directories: the file's stem, the network's name or the URL's file name."""
        if self.kind == "file":
            return self.path.stem
        return self.name or _url_stem(self.url)

    @property
    def key(self) -> str:
        """What identifies the network in a run's hash: the absolute file path, the URL or the built-in name."""
        if self.kind == "file":
            return str(self.path.resolve())
        return self.url if self.kind == "download" else f"{BUILTIN_PREFIX}{self.name}"


def is_nvidia(url: str) -> bool:
    """Whether `url` is on NVIDIA's servers (their networks' licence is then printed on download)."""
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host == "nvidia.com" or host.endswith(".nvidia.com")


def pretrained_dir() -> Path:
    """`<cache>/pretrained`: downloaded and imported networks."""
    from adagan.cache import cache_dir

    return cache_dir() / "pretrained"


def _url_stem(url: str) -> str:
    base = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    base = re.sub(r"\.pkl$", "", base, flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip(".-")[:80] or "network"


def cache_path(url: str) -> Path:
    """The safetensors file a URL is kept as: its file name plus a hash of the whole URL (two URLs that end
    in the same file name do not collide)."""
    return pretrained_dir() / f"{_url_stem(url)}-{hashlib.sha256(url.encode()).hexdigest()[:10]}.safetensors"


def parse(spec: str | os.PathLike) -> Source:
    """What `spec` names, without touching the network (only the file system is looked at)."""
    if isinstance(spec, os.PathLike):  # a Path is always a file (pathlib would have folded a URL's '//')
        return Source(str(spec), "file", Path(spec))
    spec = str(spec)
    if spec.startswith(BUILTIN_PREFIX):
        name = spec[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_NAMES:
            hint = " (builtin:twemoji is a dataset, for --data)" if name.startswith("twemoji") else ""
            raise CheckpointError(f"unknown built-in network {spec!r}; available: "
                                  f"{', '.join(BUILTIN_PREFIX + n for n in BUILTIN_NAMES)}{hint}")
        return Source(spec, "builtin", BUILTIN_DIR / f"{name}.safetensors", name=name)
    m = _SCHEME.match(spec)
    if m:
        if m.group(1).lower() not in ("http", "https"):
            raise CheckpointError(f"{spec}: only http(s) URLs can be downloaded; for a local file pass its path")
        return Source(spec, "download", cache_path(spec), url=spec)
    if not Path(spec).exists() and spec in NAMES:
        return Source(spec, "download", cache_path(NAMES[spec]), url=NAMES[spec], name=spec)
    return Source(spec, "file", Path(spec))


def describe(spec: str | os.PathLike) -> str:
    """One line saying where the network comes from and what using it would do (the training dry run)."""
    src = parse(spec)
    if src.kind == "file":
        return f"{src.path}" + ("" if src.path.exists() else " (not found: the run would stop)")
    if src.kind == "builtin":
        return f"{src.spec} = {src.path}" + ("" if src.path.exists() else " (missing from this installation)")
    state = "in the cache" if src.path.exists() else "downloaded and imported on the first real run"
    licence = "; NVIDIA licence: non-commercial use only" if is_nvidia(src.url) else ""
    return f"{src.spec}: {src.url} -> {src.path} ({state}{licence})"


def resolve_network(spec: str | os.PathLike, *, log=None) -> Path:
    """The local network file `spec` names, downloading and importing it first if it is a name or URL
    that is not in the cache yet. log: where progress lines go (default: stderr)."""
    src = parse(spec)
    if src.kind == "file":
        if not src.path.exists():
            raise CheckpointError(f"network file not found: {src.spec} (pass a .safetensors file, "
                                  f"{BUILTIN_PREFIX}{BUILTIN_NAMES[0]}, a pretrained name such as ffhq256 or "
                                  "metfaces, or an http(s) URL; names: docs/using.md)")
        return src.path
    if src.kind == "builtin":
        if not src.path.is_file():
            raise CheckpointError(f"{src.spec}: this adagan installation has no {src.path.name} (expected at "
                                  f"{src.path}); reinstall adagan, or pass a network file")
        return src.path
    if src.path.is_file():
        return src.path
    return _fetch(src, log or _stderr)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def _locked(path: Path):
    """An exclusive advisory lock on `path` (no-op without fcntl): two processes asking for the same
    network (torchrun ranks, two commands) download it once."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fetch(src: Source, log) -> Path:
    from adagan.official import import_official
    from adagan.pretrained.download import download, manual_route

    folder = src.path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"cannot create the cache folder {folder} ({e.strerror or e}); set ADAGAN_CACHE "
                              "to a writable folder") from None
    stem = src.path.name[: -len(".safetensors")]
    pkl = folder / f"{stem}.pkl"
    with _locked(folder / f".{stem}.lock"):
        if src.path.is_file():  # another process fetched it while we waited
            return src.path
        record = download(src.url, pkl, log=log, manual=manual_route(src.name or _url_stem(src.url)),
                          notice=LICENSE_NOTE if is_nvidia(src.url) else "")
        try:
            import_official(pkl, src.path)
        except CheckpointError as e:
            raise CheckpointError(f"{src.url} is not a usable StyleGAN2-ADA network pickle, so the download was "
                                  f"discarded: {str(e).replace(str(pkl), 'it')}") from None
        finally:
            pkl.unlink(missing_ok=True)  # kept as safetensors; the record below keeps its size and sha256
        record["imported_as"] = src.path.name
        text = json.dumps(record, indent=2, sort_keys=True)
        atomic_write(src.path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    log(f"Imported {src.spec} as {src.path}")
    return src.path


def export_builtin(snapshot_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """A training snapshot's G, D and G_ema as a float16 file for `builtin:NAME` (pretrained.builtin)."""
    from adagan.pretrained.builtin import export_builtin as _export

    return _export(snapshot_path, out_path)
