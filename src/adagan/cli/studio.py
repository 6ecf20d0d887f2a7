"""`adagan studio`: a local web page to watch runs and play with a generator (docs/studio.md)."""

import ipaddress
import socket
from pathlib import Path

import click

from adagan.errors import ConfigError

CTX = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
DEFAULT_PORT = 8750
PORT_TRIES = 20  # with the default port, the next ones are tried when it is taken


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on host:port; port None tries DEFAULT_PORT and the next ones, 0 = any free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    candidates = range(DEFAULT_PORT, DEFAULT_PORT + PORT_TRIES) if port is None else [port]
    last = None
    for p in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, p))
        except OSError as e:
            sock.close()
            last = e
            continue
        sock.listen(128)
        return sock
    where = f"{host}:{port}" if port is not None else f"{host} ports {DEFAULT_PORT}-{DEFAULT_PORT + PORT_TRIES - 1}"
    raise ConfigError(f"cannot listen on {where} ({last.strerror or last}); pick another --port (0 = any free one)")


@click.command(context_settings=CTX)
@click.argument("target", required=False, default="runs", metavar="[RUNS_DIR | NETWORK]")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The page has no login: keep the loopback default unless you mean to "
                   "share it.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, metavar="N",
              help=f"Port (default: {DEFAULT_PORT}, or the next free one; 0 = any free port).")
@click.option("--device", default="cpu", show_default=True,
              help="Where the generator renders: cpu, cuda or cuda:N.")
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True, metavar="N",
              help="CPU threads for rendering. One is fastest for the small renders here while a training run "
                   "shares the CPU (2 OpenMP threads then wait for each other: docs/studio.md).")
@click.option("--max-images", type=click.IntRange(1, 1024), default=64, show_default=True,
              help="Most images one picture may hold (grid, mixing table, strip).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default web browser.")
def cli(target, host, port, device, threads, max_images, open_browser):
    """Serve a local web page to watch training runs and explore a generator.

    \b
    RUNS_DIR: a folder of run directories (default: runs), or one run directory.
    NETWORK:  a .safetensors network file, builtin:twemoji32, a pretrained name (ffhq, afhqcat, ...) or
              an http(s) URL (docs/using.md); the Generator tab opens it.
    Runs tab: each run's status (kimg, sec/kimg, ETA, augment p, r_t), its curves while it trains, its
    grids at every snapshot, two runs side by side, and what D sees at a chosen p.
    Generator tab: a grid of seeds re-rendered as you move truncation psi, pinned seeds, style mixing,
    interpolation, classes, noise mode, PNG download. Nothing is written to disk.
    Needs the studio extra: pip install 'adagan[studio]'.

    \b
    Examples:
      adagan studio
      adagan studio runs/twemoji32-cpu-ada-3f9c1a/network-snapshot-000080.safetensors
      adagan studio /data/runs --port 0
    """
    try:
        import uvicorn

        from adagan.studio.app import create_app, loopback_hosts
    except ImportError as e:
        raise ConfigError(f"adagan studio needs Starlette and uvicorn ({e.name} is missing): "
                          "pip install 'adagan[studio]'") from None
    from adagan.inference import resolve_device
    from adagan.pretrained import parse, resolve_network

    if not Path(target).exists() and parse(target).kind != "file":  # a name or URL: the cached network file
        target = resolve_network(target)
    target = Path(target)
    if not target.exists():
        raise ConfigError(f"{target} does not exist; pass a folder of runs (default runs/) or a network "
                          ".safetensors file")
    network = None
    if target.is_file():
        if target.suffix != ".safetensors":
            raise ConfigError(f"{target} is not a .safetensors network file; pass it or a folder of runs")
        network, root = target, target.parent
    else:
        root = target
    resolve_device(device)  # an unavailable CUDA is refused here, not at the first render

    loopback = _is_loopback(host)
    # On loopback (IPv4 or IPv6) only Host headers naming this machine are answered: DNS rebinding.
    app = create_app(root, network=network, device=device, max_images=max_images,
                     allowed_hosts=loopback_hosts(host) if loopback else None)
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/"
    if network is not None:
        url += "#generator"
    click.echo(f"adagan studio: serving {root.resolve()} at {url}  (Ctrl-C to stop)", color=False)
    if not loopback:
        click.echo(f"Warning: listening on {host}: anyone who can reach this address can see these runs "
                   "(the page has no login).", err=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    import torch

    torch.set_num_threads(threads)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled after shutting down: a normal stop
        pass
    finally:
        sock.close()
    click.echo("adagan studio stopped.")
