"""The studio's route functions: one small function per endpoint, each reading the `Studio` context
that `app.create_app` puts on `request.app.state.studio` (the route table is in app.py).

Inputs are checked cheaply before anything is built: a list of seeds or layers is counted from its
ranges before it is expanded (`styles=0-999999` is refused at once, not after a million-item list).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from adagan.errors import ConfigError
from adagan.studio.render import Renderer
from adagan.studio.runs import SERVED_SUFFIXES, NotFound, RunIndex, safe_path

STATIC_DIR = Path(__file__).parent / "static"
NOISE_MODES = ("const", "random", "none")
MAX_STYLES = 64  # layers a mixing request may name (a 1024x1024 generator has 18)
MAX_LIST_CHARS = 2000  # a seed or layer list longer than this is refused before it is parsed


@dataclass
class Studio:
    """What every route needs: the served root, its runs, the renderer and the network to open first."""

    root: Path
    index: RunIndex
    renderer: Renderer
    first_network: str | None
    device: str | None


def studio(request: Request) -> Studio:
    return request.app.state.studio


# -- inputs ------------------------------------------------------------------------------------------------

def param(request: Request, name: str, kind=str, default=None, lo=None, hi=None):
    """A query parameter converted to `kind` and range-checked; ConfigError (HTTP 422) otherwise."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        if default is None and kind is not str:
            return None
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{name}={raw} out of range {lo}..{hi}")
    return value


def int_list(request: Request, name: str, limit: int, default: str | None = None) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7], refused when it names more than `limit` values; the count comes
    from the ranges' bounds, so a huge range costs nothing."""
    from adagan.inference import parse_range

    text = request.query_params.get(name) or default
    if not text:
        raise ConfigError(f"{name} is missing")
    if len(text) > MAX_LIST_CHARS:
        raise ConfigError(f"{name} is too long")
    count = 0
    for lo, hi in re.findall(r"(\d{1,20})(?:\s*-\s*(\d{1,20}))?", text):
        count += max(1, int(hi or lo) - int(lo) + 1)
    if count > limit:
        raise ConfigError(f"{name} names {count:,} values; the studio takes at most {limit} here")
    return parse_range(text, name, max_count=limit)


def render_params(request: Request) -> dict:
    noise = request.query_params.get("noise") or "const"
    if noise not in NOISE_MODES:
        raise ConfigError(f"noise must be one of {', '.join(NOISE_MODES)}")
    return {"psi": param(request, "psi", float, 1.0, -2.0, 2.0), "noise_mode": noise,
            "class_idx": param(request, "class", int, None, 0, 1_000_000)}


def net_path(request: Request) -> Path:
    """The network file named by `file=`, under the root; training states are never read here."""
    rel = request.query_params.get("file") or ""
    path = safe_path(studio(request).root, rel, suffixes={".safetensors"})
    if path.name.startswith("training-state-"):
        raise NotFound(rel)
    return path


# -- answers -----------------------------------------------------------------------------------------------

def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})


def etagged(request: Request, payload_fn, version: str) -> Response:
    """payload_fn() as JSON with an ETag; 304 without computing it when the client has this version."""
    etag = f'"{version}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return JSONResponse(payload_fn(), headers=headers)


def content_disposition(filename: str) -> str:
    """`attachment` with the name as RFC 6266 gives it: an ASCII `filename` fallback (non-ASCII, quotes
    and backslashes as `_`) and the UTF-8 `filename*` (RFC 8187 percent-encoding). Control characters
    (CR/LF among them) and path separators become `_` in both, so no name can break the header."""
    name = "".join("_" if ord(c) < 32 or ord(c) == 127 or c in "/\\" else c for c in filename)
    fallback = "".join(c if 32 <= ord(c) < 127 and c != '"' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def png(request: Request, data: bytes, ms: float, name: str) -> Response:
    headers = {"X-Render-Ms": f"{ms:.1f}", "Cache-Control": "no-cache"}
    if request.query_params.get("download"):
        headers["Content-Disposition"] = content_disposition(f"{name}.png")
    return Response(data, media_type="image/png", headers=headers)


# -- pages and files ---------------------------------------------------------------------------------------

async def page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def files(request: Request) -> Response:
    path = safe_path(studio(request).root, request.path_params["path"], suffixes=SERVED_SUFFIXES)
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


def info(request: Request) -> Response:
    s = studio(request)
    return JSONResponse({"root": str(s.root), "network": s.first_network, "max_images": s.renderer.max_images,
                         "device": str(s.device)})


def runs(request: Request) -> Response:
    found = studio(request).index.runs()
    version = "-".join(r.version() for r in found) or "empty"
    return etagged(request, lambda: {"runs": [r.summary() for r in found]}, f"{hash(version) & 0xFFFFFFFFFFFF:x}")


def run(request: Request) -> Response:
    r = studio(request).index.get(request.query_params.get("id") or "")
    return etagged(request, r.detail, r.version())


def networks(request: Request) -> Response:
    s = studio(request)
    return JSONResponse({"networks": s.index.networks(), "first": s.first_network})


async def network(request: Request) -> Response:
    renderer = studio(request).renderer
    return JSONResponse(await renderer.run(renderer.network_info, net_path(request)))


# -- pictures ----------------------------------------------------------------------------------------------

async def render_grid(request: Request) -> Response:
    renderer = studio(request).renderer
    path, seeds = net_path(request), int_list(request, "seeds", renderer.max_images)
    kw = render_params(request)
    cols = param(request, "cols", int, None, 1, 64)
    data, ms = await renderer.run(renderer.grid, path, seeds, cols=cols, **kw)
    return png(request, data, ms, f"{path.stem}-seeds{seeds[0]}-{seeds[-1]}-psi{kw['psi']:g}")


async def render_mix(request: Request) -> Response:
    renderer = studio(request).renderer
    path = net_path(request)
    rows, cols = int_list(request, "rows", renderer.max_images), int_list(request, "cols", renderer.max_images)
    styles = int_list(request, "styles", MAX_STYLES, "0-3")
    kw = render_params(request)
    data, ms = await renderer.run(renderer.mix, path, rows, cols, styles, **kw)
    return png(request, data, ms, f"{path.stem}-mix-styles{styles[0]}-{styles[-1]}")


async def render_strip(request: Request) -> Response:
    renderer = studio(request).renderer
    path, seeds = net_path(request), int_list(request, "seeds", renderer.max_images)
    steps = param(request, "steps", int, 6, 1, 64)
    kw = render_params(request)
    data, ms = await renderer.run(renderer.strip, path, seeds, steps, **kw)
    return png(request, data, ms, f"{path.stem}-strip-{'-'.join(map(str, seeds))}")


async def augment(request: Request) -> Response:
    s = studio(request)
    r = s.index.get(request.query_params.get("id") or "")
    p = param(request, "p", float, None, 0.0, 1.0)
    if p is None:
        p = r.status()["p"] or 0.0
    seed = param(request, "seed", int, 0, 0, 2**31 - 1)
    data, ms = await s.renderer.run(s.renderer.augment, r.config(), p, seed=seed)
    return png(request, data, ms, f"{r.name}-augment-p{p:.3f}")
