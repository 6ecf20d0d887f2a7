"""The studio's web application (Starlette): one page, its static files, JSON endpoints and rendered PNGs.

Routes (all GET; nothing is ever written to disk; the functions are in routes.py):

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
adagan refuses (a corrupt snapshot among them), 503 when the render queue is full, 400 for a Host
header the server does not answer to. The JSON endpoints answer `If-None-Match` with 304 while nothing
changed on disk, so many tabs polling cost little. Every answer carries `X-Content-Type-Options:
nosniff` and a Content-Security-Policy that allows only the page's own files and no framing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from adagan.errors import AdaganError, CheckpointError, ConfigError
from adagan.studio import routes
from adagan.studio.render import Busy, Renderer
from adagan.studio.routes import STATIC_DIR, Studio, error
from adagan.studio.runs import NotFound, RunIndex

log = logging.getLogger("adagan.studio")

# The page loads only its own script and style files and draws fetched PNGs through blob: URLs.
CSP = ("default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"content-security-policy", CSP.encode()),
                    (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]


def host_name(header: str) -> str:
    """The host of a Host header without its port: '[::1]:8750' -> '::1', 'LocalHost.:80' -> 'localhost'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0].rstrip(".") if header.count(":") == 1 else header.rstrip(".")


def loopback_hosts(host: str) -> list[str] | None:
    """The Host names a server bound to `host` answers: for a loopback address, the address itself (e.g.
    127.0.0.2 or ::1), 127.0.0.1, ::1 and localhost, so that a page on another site cannot reach it by DNS
    rebinding (its Host is that site's name); None (any) for other addresses, which warn instead."""
    name = host_name(host) if host.startswith("[") else host.lower()
    if name != "localhost":
        try:
            if not ipaddress.ip_address(name).is_loopback:
                return None
        except ValueError:
            return None
    return sorted({name, "127.0.0.1", "::1", "localhost"})


class HostCheck:
    """Refuses (HTTP 400) a request whose Host header is not one of `allowed` (ASGI middleware)."""

    def __init__(self, app, allowed: list[str]):
        self.app, self.allowed = app, {host_name(h) if h.startswith("[") else h.lower() for h in allowed}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.allowed:
                await error(400, "invalid Host header: open the address the server printed")(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP answer (ASGI middleware)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- errors: JSON with a one-line message, never a traceback -------------------------------------------

async def _not_found(request: Request, exc: Exception) -> Response:
    return error(404, "not found")


async def _refused(request: Request, exc: Exception) -> Response:
    return error(422, str(exc))


async def _busy(request: Request, exc: Exception) -> Response:
    return error(503, "the renderer is busy; try again in a moment")


async def _failed(request: Request, exc: Exception) -> Response:
    log.exception("studio request %s failed", request.url.path)
    return error(500, f"{type(exc).__name__}: {exc}")


HANDLERS = {NotFound: _not_found, AdaganError: _refused, CheckpointError: _refused, ConfigError: _refused,
            Busy: _busy, 404: _not_found, Exception: _failed}

ROUTES = [
    Route("/", routes.page), Route("/files/{path:path}", routes.files), Route("/api/info", routes.info),
    Route("/api/runs", routes.runs), Route("/api/run", routes.run), Route("/api/networks", routes.networks),
    Route("/api/network", routes.network), Route("/api/render/grid", routes.render_grid),
    Route("/api/render/mix", routes.render_mix), Route("/api/render/strip", routes.render_strip),
    Route("/api/augment", routes.augment), Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
]


def create_app(root: str | Path, *, network: str | Path | None = None, device: str | None = "cpu",
               max_images: int | None = None, allowed_hosts: list[str] | None = None) -> Starlette:
    """The studio app serving runs under `root`.

    network: a network file under root to open first in the Generator tab.
    allowed_hosts: Host header values accepted (`loopback_hosts(host)` for a loopback address, which
    shuts out DNS-rebinding pages); None accepts any.
    """
    root = Path(root).resolve()
    renderer = Renderer(device=device, **({"max_images": max_images} if max_images else {}))
    first = Path(network).resolve().relative_to(root).as_posix() if network is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        renderer.close()

    middleware = [Middleware(SecurityHeaders), Middleware(GZipMiddleware, minimum_size=1000)]
    if allowed_hosts is not None:
        middleware.insert(1, Middleware(HostCheck, allowed=allowed_hosts))
    app = Starlette(routes=ROUTES, middleware=middleware, exception_handlers=HANDLERS, lifespan=lifespan)
    app.state.studio = Studio(root=root, index=RunIndex(root), renderer=renderer, first_network=first, device=device)
    app.state.renderer, app.state.index = renderer, app.state.studio.index
    return app
