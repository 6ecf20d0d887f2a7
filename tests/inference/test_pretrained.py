"""Pretrained networks by name or URL, against an HTTP server on 127.0.0.1 (no internet): download, resume,
timeout, atomic cache, the safe import, and the errors (404, truncated, not a pickle, a pickle with code)."""

import hashlib
import http.server
import importlib.util
import json
import os
import pickle
import socket
import threading
from pathlib import Path

import pytest
import torch

from adagan import pretrained
from adagan.errors import CheckpointError
from adagan.pretrained import download as dl


def _official_writer():
    """tests/inference/test_official.py's writer of official-format pickles (test modules are not importable
    by name under --import-mode=importlib)."""
    spec = importlib.util.spec_from_file_location("_official_writer", Path(__file__).with_name("test_official.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.write_official


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves server.routes[path] = (mode, body). Modes: ok (Range and ETag supported), norange (Range
    ignored), 404, truncate_once (the first answer stops half-way), stall (headers, a few bytes, then
    silence)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        mode, body = srv.routes.get(self.path, ("404", b""))
        if mode == "404":
            self.send_error(404, "Not Found")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and mode == "ok":
            start = int(rng.split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        if mode == "truncate_once":
            srv.routes[self.path] = ("ok", body)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "stall":
            self.wfile.write(body[:10])
            self.wfile.flush()
            srv.release.wait(5)
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.routes, srv.requests, srv.release = {}, [], threading.Event()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(dl, "TIMEOUT", 1.0)  # a stalled server is given up on after 1 s
    return tmp_path / "cache" / "pretrained"


@pytest.fixture
def official_pickle(tmp_path, inf_helpers):
    """(bytes of an official-format pickle of tiny G, D, G_ema; the networks)."""
    G = inf_helpers.tiny_generator(seed=1)
    G_ema = inf_helpers.tiny_generator(seed=2)
    D = inf_helpers.tiny_discriminator()
    path = tmp_path / "official.pkl"
    _official_writer()(path, G, D, G_ema)
    return path.read_bytes(), {"G": G, "D": D, "G_ema": G_ema}


def _assert_same_networks(path, nets):
    from adagan.io import load_networks

    got = load_networks(path)
    for name, ref in nets.items():
        for k, v in ref.state_dict().items():
            assert torch.equal(got[name].state_dict()[k], v), (name, k)


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: "connection refused", as without a network
    return f"http://127.0.0.1:{port}/net.pkl"


def test_url_downloads_once_imports_safely_and_is_reused_offline(server, cache, official_pickle, run_cli,
                                                                 tmp_path, monkeypatch):
    body, nets = official_pickle
    server.routes["/nets/tiny.pkl"] = ("ok", body)
    url = server.url + "/nets/tiny.pkl"
    # `--network URL` keeps its '//' (click.Path folded it to 'http:/...').
    code, out, err = run_cli("generate", "--network", url, "--seeds", "0-1", "--outdir", tmp_path / "out")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["seed0000.png", "seed0001.png"]
    assert f"Downloading {url}" in err and "sha256" in err
    assert "non-commercial" not in err  # not NVIDIA's server: no NVIDIA licence line
    kept = pretrained.cache_path(url)
    assert kept.parent == cache and kept.is_file()
    _assert_same_networks(kept, nets)
    record = json.loads(kept.with_suffix(".json").read_text())
    assert record["size"] == len(body) and record["sha256"] == hashlib.sha256(body).hexdigest()
    assert record["url"] == url
    left = {p.name for p in cache.iterdir() if not p.name.startswith(".")}
    assert left == {kept.name, kept.with_suffix(".json").name}  # no pickle, no part left
    # Second use: no network and no import.
    server.routes.clear()
    monkeypatch.setattr("adagan.official.import_official", lambda *a: pytest.fail("imported twice"))
    code, out, err = run_cli("info", url)
    assert code == 0, err
    assert f"file: {kept}" in out and "networks: G, D, G_ema" in out
    assert len(server.requests) == 1


def test_names_resolve_to_their_url_and_cache_path(server, cache, official_pickle, monkeypatch, run_cli, tmp_path):
    from adagan.io import load_network

    assert pretrained.NAMES["ffhq256"].endswith("transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl")
    assert pretrained.NAMES["metfaces"] == pretrained.NVIDIA_BASE + "metfaces.pkl"
    body, nets = official_pickle
    server.routes["/t.pkl"] = ("ok", body)
    monkeypatch.setitem(pretrained.NAMES, "tinyname", server.url + "/t.pkl")
    assert pretrained.parse("tinyname").path == pretrained.cache_path(server.url + "/t.pkl")
    G = load_network("tinyname")  # the library takes names too (io goes through the resolver)
    assert torch.equal(G.mapping.w_avg, nets["G_ema"].mapping.w_avg)
    (tmp_path / "tinyname").write_bytes(b"")  # an existing file wins over a name
    monkeypatch.chdir(tmp_path)
    assert pretrained.parse("tinyname").kind == "file"


def test_interrupted_download_resumes_with_range(server, cache, official_pickle):
    body, nets = official_pickle
    server.routes["/r.pkl"] = ("truncate_once", body)
    url = server.url + "/r.pkl"
    with pytest.raises(CheckpointError, match="ended early at .* run the same command again to resume"):
        pretrained.resolve_network(url, log=lambda m: None)
    part = cache / (pretrained.cache_path(url).stem + ".pkl.part")
    assert part.stat().st_size == len(body) // 2
    assert not pretrained.cache_path(url).exists()  # never half a file under the real name
    path = pretrained.resolve_network(url, log=lambda m: None)
    assert server.requests[-1] == ("/r.pkl", f"bytes={len(body) // 2}-")
    _assert_same_networks(path, nets)
    assert json.loads(path.with_suffix(".json").read_text())["sha256"] == hashlib.sha256(body).hexdigest()


def test_a_part_the_server_cannot_resume_is_discarded(server, cache, official_pickle):
    body, nets = official_pickle
    server.routes["/n.pkl"] = ("norange", body)
    url = server.url + "/n.pkl"
    part = cache / (pretrained.cache_path(url).stem + ".pkl.part")
    cache.mkdir(parents=True)
    part.write_bytes(b"stale bytes of another version")
    Path(f"{part}.json").write_text(json.dumps({"url": url, "validator": '"v0"', "total": 123}))
    path = pretrained.resolve_network(url, log=lambda m: None)
    assert server.requests[-1][1] is not None  # it asked for the rest, got the whole body, and kept only that
    _assert_same_networks(path, nets)


@pytest.mark.parametrize("mode,body,message", [
    ("404", b"", "HTTP 404 Not Found; check the name or URL"),
    ("ok", b"<html>no such network</html>", "is not a usable StyleGAN2-ADA network pickle, so the download was "
                                             "discarded"),
])
def test_http_errors_and_non_pickles(server, cache, run_cli, tmp_path, mode, body, message):
    server.routes["/x.pkl"] = (mode, body)
    code, out, err = run_cli("generate", "--network", server.url + "/x.pkl", "--seeds", "0", "--outdir",
                             tmp_path / "o")
    assert code == 1 and message in err, err
    assert err.strip().splitlines()[-1].startswith("Error: ") and "Traceback" not in err
    assert not any(p.suffix in (".pkl", ".safetensors") for p in cache.iterdir())


def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(server, cache, run_cli, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    server.routes["/evil.pkl"] = ("ok", pickle.dumps({"G": Evil()}))
    code, _, err = run_cli("info", server.url + "/evil.pkl")
    assert code == 1 and "refusing to load" in err and "download was discarded" in err, err
    assert not marker.exists()
    assert not any(p.suffix in (".pkl", ".safetensors") for p in cache.iterdir())


def test_a_stalled_server_times_out_and_keeps_the_part(server, cache, official_pickle):
    body, _ = official_pickle
    server.routes["/s.pkl"] = ("stall", body)
    url = server.url + "/s.pkl"
    with pytest.raises(CheckpointError, match=r"stopped at 0\.0 MB of .* \(no data for the timeout\); run the same "
                                              "command again to resume"):
        pretrained.resolve_network(url, log=lambda m: None)
    assert (cache / (pretrained.cache_path(url).stem + ".pkl.part")).stat().st_size == 10


def test_without_network_one_line_names_the_url_and_the_manual_route(cache, run_cli, tmp_path, monkeypatch):
    url = _closed_port_url()
    monkeypatch.setitem(pretrained.NAMES, "offline256", url)
    code, out, err = run_cli("generate", "--network", "offline256", "--seeds", "0", "--outdir", tmp_path / "o")
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith(f"Error: cannot download {url} (")
    assert "adagan import-official --source FILE.pkl --dest offline256.safetensors" in err


def test_train_resume_by_name_dry_run_and_offline_run(cache, run_cli, tmp_path, monkeypatch, inf_helpers):
    from PIL import Image

    data = tmp_path / "imgs"
    data.mkdir()
    for i in range(4):
        Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(data / f"{i}.png")
    url = _closed_port_url()
    monkeypatch.setitem(pretrained.NAMES, "offline256", url)
    base = ["train", "--data", data, "--outdir", tmp_path / "runs", "--batch", "4", "--kimg", "0.01"]
    args = [*base, "--resume", "offline256"]
    code, out, err = run_cli(*args, "--dry-run")
    assert code == 0, err
    assert f"Resume from: offline256: {url} -> {pretrained.cache_path(url)} (downloaded and imported on the first " \
           "real run)" in out
    assert "-from-offline256-" in out
    code, out, err = run_cli(*args)
    assert code == 1 and err.count("\n") == 1 and f"Error: cannot download {url}" in err, err
    # A real NVIDIA name: the dry run names NVIDIA's URL, the cache path and the licence, and downloads nothing.
    code, out, err = run_cli(*base, "--resume", "ffhq256", "--dry-run")
    assert code == 0, err
    assert f"Resume from: ffhq256: {pretrained.NAMES['ffhq256']} -> {cache}/ffhq-res256-mirror-paper256-noaug-" in out
    assert "non-commercial" in out and not any("ffhq" in p.name for p in cache.iterdir())


def test_unknown_names_and_schemes(cache):
    with pytest.raises(CheckpointError, match="network file not found: ffhq257 .*a pretrained name"):
        pretrained.resolve_network("ffhq257")
    with pytest.raises(CheckpointError, match="only http"):
        pretrained.resolve_network("ftp://example.org/x.pkl")
    with pytest.raises(CheckpointError, match="builtin:twemoji is a dataset"):
        pretrained.resolve_network("builtin:twemoji")
    a, b = pretrained.cache_path("http://a/x/net.pkl"), pretrained.cache_path("http://b/x/net.pkl")
    assert a != b and a.name.startswith("net-") and b.name.startswith("net-")


def test_nvidia_licence_is_printed_when_the_download_starts(server, cache, official_pickle, monkeypatch):
    body, _ = official_pickle
    server.routes["/l.pkl"] = ("ok", body)
    monkeypatch.setattr(pretrained, "is_nvidia", lambda url: True)
    lines = []
    pretrained.resolve_network(server.url + "/l.pkl", log=lines.append)
    assert pretrained.NVIDIA_LICENSE in lines[0] and "non-commercial" in lines[0]
    lines.clear()
    pretrained.resolve_network(server.url + "/l.pkl", log=lines.append)
    assert lines == []  # once: the second use is the cached file


def test_is_nvidia():
    assert all(pretrained.is_nvidia(url) for url in pretrained.NAMES.values())
    assert not pretrained.is_nvidia("http://nvidia.com.evil.org/x.pkl")


def test_two_concurrent_users_download_once(server, cache, official_pickle):
    body, nets = official_pickle
    server.routes["/c.pkl"] = ("ok", body)
    url = server.url + "/c.pkl"
    paths, errors = [], []

    def use():
        try:
            paths.append(pretrained.resolve_network(url, log=lambda m: None))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=use) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(paths) == 3 and len(set(paths)) == 1
    assert len(server.requests) == 1  # the lock: the others waited, then found the cached file
    _assert_same_networks(paths[0], nets)
