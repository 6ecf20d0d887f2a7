"""The studio's web application (Starlette): one page, its static files, JSON endpoints and rendered PNGs.

Routes (all GET; nothing is ever written to disk):

    /                         the page            /static/NAME         its JS/CSS (package data)
    /files/PATH               an image or small text file of a run, only from under the root
    /api/info                 root, limits        /api/runs            every run's status
    /api/run?id=RUN           curves, grids, snapshots and status of one run
    /api/networks             snapshots the Generator tab can load
    /api/network?file=F       a snapshot's resolution, classes, num_ws (or the error that loading it gave)
    /api/render/grid?file=F&seeds=0-7&psi=0.7&noise=const[&class=K][&cols=N][&download=1]
    /api/render/mix?file=F&rows=1,2&cols=1,2&styles=0-3&psi=..  style mixing (as `adagan mix`)
    /api/render/strip?file=F&seeds=1,2&steps=6&psi=..           interpolation strip through seeds
    /api/augment?id=RUN&p=0.3[&seed=S]                          what D sees at p (augment-preview)

Errors are JSON `{"error": message}`: 404 for anything not under the root, 422 for an input or file
adagan refuses (a corrupt snapshot among them), 503 when the render queue is full. The JSON endpoints
answer `If-None-Match` with 304 while nothing changed on disk, so many tabs polling cost little.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from adagan.errors import AdaganError, CheckpointError, ConfigError
from adagan.studio.render import Busy, Renderer
from adagan.studio.runs import SERVED_SUFFIXES, NotFound, RunIndex, safe_path

STATIC_DIR = Path(__file__).parent / "static"
NOISE_MODES = ("const", "random", "none")
log = logging.getLogger("adagan.studio")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})


def _param(request: Request, name: str, kind=str, default=None, lo=None, hi=None):
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


def _seeds(request: Request, name: str, default: str | None = None) -> list[int]:
    from adagan.inference import parse_range

    text = request.query_params.get(name) or default
    if not text:
        raise ConfigError(f"{name} is missing")
    if len(text) > 2000:
        raise ConfigError(f"{name} is too long")
    return parse_range(text, name)


def _json(request: Request, payload_fn, version: str) -> Response:
    """payload_fn() as JSON with an ETag; 304 without computing it when the client has this version."""
    etag = f'"{version}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return JSONResponse(payload_fn(), headers=headers)


def create_app(root: str | Path, *, network: str | Path | None = None, device: str | None = "cpu",
               max_images: int | None = None, allowed_hosts: list[str] | None = None) -> Starlette:
    """The studio app serving runs under `root`.

    network: a network file under root to open first in the Generator tab.
    allowed_hosts: Host header values accepted (e.g. 127.0.0.1, localhost when bound to loopback, which
    also shuts out DNS-rebinding pages); None accepts any.
    """
    root = Path(root).resolve()
    index = RunIndex(root)
    renderer = Renderer(device=device, **({"max_images": max_images} if max_images else {}))
    first_network = None
    if network is not None:
        first_network = Path(network).resolve().relative_to(root).as_posix()

    def net_path(request: Request) -> Path:
        rel = request.query_params.get("file") or ""
        path = safe_path(root, rel, suffixes={".safetensors"})
        if path.name.startswith("training-state-"):
            raise NotFound(rel)
        return path

    def render_params(request: Request) -> dict:
        noise = request.query_params.get("noise") or "const"
        if noise not in NOISE_MODES:
            raise ConfigError(f"noise must be one of {', '.join(NOISE_MODES)}")
        return {"psi": _param(request, "psi", float, 1.0, -2.0, 2.0), "noise_mode": noise,
                "class_idx": _param(request, "class", int, None, 0, 1_000_000)}

    def png(request: Request, data: bytes, ms: float, name: str) -> Response:
        headers = {"X-Render-Ms": f"{ms:.1f}", "Cache-Control": "no-cache"}
        if request.query_params.get("download"):
            headers["Content-Disposition"] = f'attachment; filename="{name}.png"'
        return Response(data, media_type="image/png", headers=headers)

    # -- pages and files -------------------------------------------------------------------------------

    async def page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    def files(request: Request) -> Response:
        path = safe_path(root, request.path_params["path"], suffixes=SERVED_SUFFIXES)
        return FileResponse(path, headers={"Cache-Control": "no-cache"})

    def info(request: Request) -> Response:
        return JSONResponse({"root": str(root), "network": first_network, "max_images": renderer.max_images,
                             "device": str(device)})

    def runs(request: Request) -> Response:
        found = index.runs()
        version = "-".join(r.version() for r in found) or "empty"
        return _json(request, lambda: {"runs": [r.summary() for r in found]}, f"{hash(version) & 0xFFFFFFFFFFFF:x}")

    def run(request: Request) -> Response:
        r = index.get(request.query_params.get("id") or "")
        return _json(request, r.detail, r.version())

    def networks(request: Request) -> Response:
        return JSONResponse({"networks": index.networks(), "first": first_network})

    async def network(request: Request) -> Response:
        path = net_path(request)
        return JSONResponse(await renderer.run(renderer.network_info, path))

    async def render_grid(request: Request) -> Response:
        path, seeds = net_path(request), _seeds(request, "seeds")
        kw = render_params(request)
        cols = _param(request, "cols", int, None, 1, 64)
        data, ms = await renderer.run(renderer.grid, path, seeds, cols=cols, **kw)
        return png(request, data, ms, f"{path.stem}-seeds{seeds[0]}-{seeds[-1]}-psi{kw['psi']:g}")

    async def render_mix(request: Request) -> Response:
        path = net_path(request)
        rows, cols, styles = _seeds(request, "rows"), _seeds(request, "cols"), _seeds(request, "styles", "0-3")
        kw = render_params(request)
        data, ms = await renderer.run(renderer.mix, path, rows, cols, styles, **kw)
        return png(request, data, ms, f"{path.stem}-mix-styles{styles[0]}-{styles[-1]}")

    async def render_strip(request: Request) -> Response:
        path, seeds = net_path(request), _seeds(request, "seeds")
        steps = _param(request, "steps", int, 6, 1, 64)
        kw = render_params(request)
        data, ms = await renderer.run(renderer.strip, path, seeds, steps, **kw)
        return png(request, data, ms, f"{path.stem}-strip-{'-'.join(map(str, seeds))}")

    async def augment(request: Request) -> Response:
        r = index.get(request.query_params.get("id") or "")
        p = _param(request, "p", float, None, 0.0, 1.0)
        if p is None:
            p = r.status()["p"] or 0.0
        seed = _param(request, "seed", int, 0, 0, 2**31 - 1)
        data, ms = await renderer.run(renderer.augment, r.config(), p, seed=seed)
        return png(request, data, ms, f"{r.name}-augment-p{p:.3f}")

    # -- errors: JSON with a one-line message, never a traceback ---------------------------------------

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, "not found")

    async def refused(request: Request, exc: Exception) -> Response:
        return _error(422, str(exc))

    async def busy(request: Request, exc: Exception) -> Response:
        return _error(503, "the renderer is busy; try again in a moment")

    async def failed(request: Request, exc: Exception) -> Response:
        log.exception("studio request %s failed", request.url.path)
        return _error(500, f"{type(exc).__name__}: {exc}")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        renderer.close()

    routes = [
        Route("/", page), Route("/files/{path:path}", files), Route("/api/info", info),
        Route("/api/runs", runs), Route("/api/run", run), Route("/api/networks", networks),
        Route("/api/network", network), Route("/api/render/grid", render_grid), Route("/api/render/mix", render_mix),
        Route("/api/render/strip", render_strip), Route("/api/augment", augment),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    middleware = [Middleware(GZipMiddleware, minimum_size=1000)]
    if allowed_hosts is not None:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    handlers = {NotFound: not_found, AdaganError: refused, CheckpointError: refused, ConfigError: refused,
                Busy: busy, 404: not_found, Exception: failed}
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan)
    app.state.renderer, app.state.index = renderer, index
    return app
