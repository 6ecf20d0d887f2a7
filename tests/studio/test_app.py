"""`adagan studio`'s HTTP API on a real tiny run: curves, files, rendering, refusals and robustness."""

import io
import json
import os
import re
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
try:  # Starlette's TestClient runs on httpx2 (older Starlette: httpx); it raises RuntimeError without either
    from starlette.testclient import TestClient
except (ImportError, RuntimeError) as e:
    pytest.skip(f"starlette.testclient unavailable: {e}", allow_module_level=True)

from adagan.studio.app import create_app  # noqa: E402

SNAP = "tiny/network-snapshot-000000.safetensors"


def _client(root, **kw):
    return TestClient(create_app(root, **kw))


def _png(resp) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(resp.content)))


def _tree(root):
    """Every file under root with its size and mtime: to show that the studio wrote nothing."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_page_and_assets_are_served(studio_root):
    from importlib.resources import files

    static = files("adagan.studio") / "static"  # package data: what an installed wheel carries
    scripts = ("common.js", "charts.js", "runs.js", "generator.js", "studio.js")
    assert all((static / name).is_file() for name in ("index.html", "studio.css", *scripts))
    with _client(studio_root) as client:
        page = client.get("/")
        assert page.status_code == 200 and "adagan studio" in page.text
        assert "http" not in page.text.split("<body>")[1]  # no CDN
        assert [f"/static/{name}" for name in scripts] == re.findall(r'<script src="([^"]+)"', page.text)
        assert "drawChart" in client.get("/static/charts.js").text
        for name in (*scripts, "studio.css"):
            assert client.get(f"/static/{name}").status_code == 200


def test_runs_list_status_and_curves(studio_root):
    with _client(studio_root) as client:
        runs = client.get("/api/runs").json()["runs"]
        assert [r["id"] for r in runs] == ["tiny"]
        status = runs[0]["status"]
        assert status["kimg"] == pytest.approx(0.032) and status["target_kimg"] == pytest.approx(0.032)
        assert status["state"] == "done" and status["sec_per_kimg"] > 0 and status["r_t"] is not None
        assert runs[0]["snapshots"] == 1

        run = client.get("/api/run", params={"id": "tiny"}).json()
        assert run["kimg"] == pytest.approx([0.016, 0.032])
        for key in ("Loss/G/loss", "Loss/D/loss", "Progress/augment", "Progress/r_t", "Timing/sec_per_kimg"):
            assert len(run["series"][key]) == 2
        assert [g["label"] for g in run["grids"]] == ["init", "0 kimg"]
        assert run["snapshots"] == [{"kimg": 0, "file": SNAP}]
        for g in run["grids"] + [{"file": run["reals"]}]:
            assert _png(client.get("/files/" + g["file"])).shape[-1] == 3


def test_unchanged_run_answers_304(run_copy):
    root, run = run_copy
    with _client(root) as client:
        first = client.get("/api/run", params={"id": "tiny"})
        etag = first.headers["etag"]
        again = client.get("/api/run", params={"id": "tiny"}, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        with open(run / "stats.jsonl", "a") as f:
            f.write(json.dumps({"Progress/kimg": 0.048, "Loss/G/loss": 1.0}) + "\n")
        changed = client.get("/api/run", params={"id": "tiny"}, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.json()["kimg"][-1] == pytest.approx(0.048)
        runs_tag = client.get("/api/runs").headers["etag"]
        assert client.get("/api/runs", headers={"If-None-Match": runs_tag}).status_code == 304


def test_metrics_become_curves(run_copy):
    root, run = run_copy
    lines = [{"results": {"fid1k": 250.0, "kid1k": 0.2}, "metric": "fid1k", "kimg": 0.0},
             {"results": {"fid1k": float("nan")}, "kimg": 1.0}]
    (run / "metric-fid1k.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"results": {"fid')
    with _client(root) as client:
        metrics = client.get("/api/run", params={"id": "tiny"}).json()["metrics"]
        assert metrics == {"fid1k": [[0.0, 250.0]], "kid1k": [[0.0, 0.2]]}


def test_partial_and_corrupt_stats_lines_are_skipped(run_copy):
    root, run = run_copy
    stats = run / "stats.jsonl"
    with _client(root) as client:
        assert len(client.get("/api/run", params={"id": "tiny"}).json()["kimg"]) == 2
        with open(stats, "a") as f:  # a line being written: no newline yet
            f.write('{"Progress/kimg": 0.048, "Loss/G/lo')
        run_json = client.get("/api/run", params={"id": "tiny"}).json()
        assert run_json["kimg"] == pytest.approx([0.016, 0.032])
        assert client.get("/api/runs").status_code == 200
        with open(stats, "a") as f:  # ... and finished: now it counts
            f.write('ss": 0.5}\n')
        run_json = client.get("/api/run", params={"id": "tiny"}).json()
        assert run_json["kimg"] == pytest.approx([0.016, 0.032, 0.048])
        assert run_json["series"]["Loss/G/loss"][-1] == 0.5
        with open(stats, "a") as f:  # a writer killed mid-line: the half line stays, later lines follow it
            f.write('{"Progress/kimg": 0.0\n[1, 2]\n{"Progress/kimg": 0.064, "Loss/G/loss": NaN}\n')
        run_json = client.get("/api/run", params={"id": "tiny"}).json()
        assert run_json["kimg"] == pytest.approx([0.016, 0.032, 0.048, 0.064])
        assert run_json["series"]["Loss/G/loss"][-1] is None  # NaN travels as null
        stats.write_text(stats.read_text().splitlines(keepends=True)[0])  # resume rewrote it shorter
        assert client.get("/api/run", params={"id": "tiny"}).json()["kimg"] == pytest.approx([0.016])


@pytest.mark.parametrize("url", [
    "/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/files/..%2f..%2f..%2fetc%2fpasswd",
    "/files//etc/passwd",
    "/files/tiny/../../../etc/passwd",
    "/files/tiny/network-snapshot-000000.safetensors",  # not a file type the page shows
    "/files/tiny/training-state-000000032.safetensors",
    "/files/tiny/missing.png",
    "/api/network?file=../../../etc/passwd",
    "/api/network?file=/etc/passwd",
    "/api/network?file=tiny/training-state-000000032.safetensors",
    "/api/render/grid?file=..%2F..%2Fx.safetensors&seeds=0",
    "/api/run?id=..",
    "/api/run?id=/",
    "/api/augment?id=../tiny",
])
def test_paths_outside_the_root_are_404(studio_root, url):
    with _client(studio_root) as client:
        resp = client.get(url)
        assert resp.status_code == 404, url
        assert resp.json() == {"error": "not found"}


def test_files_beside_the_root_are_404(run_copy, tmp_path):
    """Files of a served type just outside the root: only the root check keeps them out."""
    root, run = run_copy
    (tmp_path / "outside.png").write_bytes((run / "reals.png").read_bytes())
    (tmp_path / "outside.safetensors").write_bytes((run / "network-snapshot-000000.safetensors").read_bytes())
    with _client(root) as client:
        assert client.get("/files/tiny/reals.png").status_code == 200
        for url in ("/files/..%2foutside.png", f"/files/{tmp_path}/outside.png".replace("//", "/%2f"),
                    "/api/network?file=../outside.safetensors",
                    f"/api/network?file={tmp_path}/outside.safetensors",
                    "/api/render/grid?file=tiny/../../outside.safetensors&seeds=0"):
            resp = client.get(url)
            assert resp.status_code == 404, url
            assert resp.json() == {"error": "not found"}


def test_symlink_out_of_the_root_is_404(run_copy, tmp_path):
    root, run = run_copy
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    os.symlink(secret, run / "link.txt")
    with _client(root) as client:
        assert client.get("/files/tiny/log.txt").status_code == 200
        assert client.get("/files/tiny/link.txt").status_code == 404


def test_host_header_is_checked_on_loopback(studio_root):
    app = create_app(studio_root, allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/api/runs").status_code == 200
    with TestClient(app, base_url="http://attacker.example") as client:  # a DNS-rebinding page
        assert client.get("/api/runs").status_code == 400


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_snapshot_is_a_json_error(run_copy, damage):
    root, run = run_copy
    good = (run / "network-snapshot-000000.safetensors").read_bytes()
    bad = {"garbage": b"\x00not a safetensors file" * 10, "truncated": good[: len(good) // 2], "empty": b""}[damage]
    (run / "network-snapshot-000007.safetensors").write_bytes(bad)
    with _client(root) as client:
        listed = [n["file"] for n in client.get("/api/networks").json()["networks"]]
        assert listed[0] == "tiny/network-snapshot-000007.safetensors"
        for url in ("/api/network", "/api/render/grid"):
            resp = client.get(url, params={"file": "tiny/network-snapshot-000007.safetensors", "seeds": "0-3"})
            assert resp.status_code == 422
            assert "network-snapshot-000007" in resp.json()["error"]
            assert "Traceback" not in resp.text
        assert client.get("/api/network", params={"file": SNAP}).status_code == 200  # the others still load


def test_network_info(studio_root):
    with _client(studio_root) as client:
        info = client.get("/api/network", params={"file": SNAP}).json()
        assert info["resolution"] == 16 and info["num_ws"] == 6 and info["c_dim"] == 0
        assert info["kimg"] == pytest.approx(0.032)
        assert info["origin"] is None and info["total_kimg"] == pytest.approx(0.032)


def test_network_info_says_what_a_network_was_fine_tuned_from(run_copy):
    from adagan.io import load_networks, read_metadata, save_networks

    root, run = run_copy
    snap = run / "network-snapshot-000000.safetensors"
    meta = {k[len("meta."):]: v for k, v in read_metadata(snap).items() if k.startswith("meta.")}
    save_networks(snap, **load_networks(snap), metadata={**meta, "resumed_from": {"network": "builtin:twemoji32",
                                                                                  "kimg": 459.104}})
    with _client(root) as client:
        info = client.get("/api/network", params={"file": SNAP}).json()
        assert info["origin"] == "builtin:twemoji32" and info["total_kimg"] == pytest.approx(459.136)


def test_truncation_changes_the_image(studio_root):
    with _client(studio_root) as client:
        def grid(psi):
            return client.get("/api/render/grid", params={"file": SNAP, "seeds": "0-7", "psi": psi, "cols": 8})

        full, half = grid(1.0), grid(0.5)
        assert full.content != half.content
        assert _png(full).shape == (16, 8 * 16, 3)
        assert grid(0.5).content == half.content  # same inputs, same picture
        assert float(full.headers["x-render-ms"]) >= 0


def test_grid_is_what_adagan_generate_renders(studio_root):
    from adagan.inference import generate, load_generator, make_grid

    G = load_generator(studio_root / SNAP, "cpu")
    expected = make_grid(generate(G, [3, 4, 5, 6], truncation_psi=0.7, noise_mode="const"), 2)
    with _client(studio_root) as client:
        resp = client.get("/api/render/grid", params={"file": SNAP, "seeds": "3-6", "psi": 0.7, "cols": 2})
        np.testing.assert_array_equal(_png(resp), expected)


def test_mix_strip_noise_and_download(studio_root):
    from adagan.inference import load_generator, style_mix

    G = load_generator(studio_root / SNAP, "cpu")
    with _client(studio_root) as client:
        mix = client.get("/api/render/mix", params={"file": SNAP, "rows": "1,2", "cols": "1,2", "styles": "0-2",
                                                    "psi": 0.8})
        np.testing.assert_array_equal(_png(mix), style_mix(G, [1, 2], [1, 2], [0, 1, 2], truncation_psi=0.8))
        strip = client.get("/api/render/strip", params={"file": SNAP, "seeds": "1,2,3", "steps": 4})
        assert _png(strip).shape == (16, (2 * 4 + 1) * 16, 3)
        one = client.get("/api/render/strip", params={"file": SNAP, "seeds": "1", "steps": 4})
        assert one.status_code == 422 and "two seeds" in one.json()["error"]
        const = client.get("/api/render/grid", params={"file": SNAP, "seeds": "0", "noise": "const"})
        none = client.get("/api/render/grid", params={"file": SNAP, "seeds": "0", "noise": "none"})
        assert const.content != none.content
        dl = client.get("/api/render/grid", params={"file": SNAP, "seeds": "0", "download": 1})
        assert dl.headers["content-disposition"].startswith("attachment; filename=")


@pytest.mark.parametrize("params, message", [
    ({"seeds": "0-999"}, "at most 64"),
    ({"seeds": "0", "psi": "abc"}, "not a valid float"),
    ({"seeds": "0", "psi": "nan"}, "finite"),
    ({"seeds": "0", "psi": "9"}, "out of range"),
    ({"seeds": "0", "noise": "loud"}, "noise must be"),
    ({"seeds": "0", "class": "1"}, "unconditional"),
    ({"seeds": "x"}, "bad --seeds"),
    ({"seeds": str(2**40)}, "out of range"),
    ({}, "seeds is missing"),
])
def test_bad_render_inputs_are_json_errors(studio_root, params, message):
    with _client(studio_root) as client:
        resp = client.get("/api/render/grid", params={"file": SNAP, **params})
        assert resp.status_code == 422 and message in resp.json()["error"]


def test_image_limit_is_configurable(studio_root):
    with _client(studio_root, max_images=4) as client:
        assert client.get("/api/render/grid", params={"file": SNAP, "seeds": "0-3"}).status_code == 200
        resp = client.get("/api/render/grid", params={"file": SNAP, "seeds": "0-4"})
        assert resp.status_code == 422 and "at most 4" in resp.json()["error"]


def test_full_render_queue_answers_503(studio_root):
    app = create_app(studio_root)
    app.state.renderer.max_queue = 0
    with TestClient(app) as client:
        resp = client.get("/api/render/grid", params={"file": SNAP, "seeds": "0"})
        assert resp.status_code == 503 and "busy" in resp.json()["error"]


def test_generator_cache_is_lru_and_reloads_a_rewritten_file(run_copy):
    root, run = run_copy
    app = create_app(root)
    renderer = app.state.renderer
    snap = run / "network-snapshot-000000.safetensors"
    G1 = renderer.generator(snap)
    assert renderer.generator(snap) is G1
    os.utime(snap, ns=(time.time_ns(), time.time_ns() + 10**9))  # rewritten by a resumed run
    assert renderer.generator(snap) is not G1
    for i in range(5):
        renderer.generator(snap)
        os.utime(snap, ns=(time.time_ns(), time.time_ns() + (i + 2) * 10**9))
    assert len(renderer._generators) == 3


def test_augment_preview_at_p(studio_root):
    with _client(studio_root) as client:
        p0 = client.get("/api/augment", params={"id": "tiny", "p": 0})
        p1 = client.get("/api/augment", params={"id": "tiny", "p": 1})
        img0, img1 = _png(p0), _png(p1)
        assert img0.shape == img1.shape and img0.shape[0] > 4 * 16  # reals + 3 augmented rows
        assert not np.array_equal(img0, img1)
        assert client.get("/api/augment", params={"id": "tiny", "p": 2}).status_code == 422


def test_augment_preview_with_missing_data_is_a_json_error(run_copy):
    root, run = run_copy
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"] = str(root / "no-such-data")
    (run / "config.json").write_text(json.dumps(cfg))
    with _client(root) as client:
        resp = client.get("/api/augment", params={"id": "tiny", "p": 0.5})
        assert resp.status_code == 422 and "does not exist" in resp.json()["error"]


def test_nothing_is_written(studio_root):
    before = _tree(studio_root)
    with _client(studio_root) as client:
        client.get("/api/runs")
        client.get("/api/run", params={"id": "tiny"})
        client.get("/api/render/grid", params={"file": SNAP, "seeds": "0-3", "download": 1})
        client.get("/api/render/mix", params={"file": SNAP, "rows": "1", "cols": "2"})
        client.get("/api/augment", params={"id": "tiny"})
    assert _tree(studio_root) == before


def test_network_file_argument_and_nested_runs(run_copy):
    root, run = run_copy
    nested = root / "study" / "ada"
    nested.parent.mkdir()
    os.rename(run, nested)
    with _client(root, network=nested / "network-snapshot-000000.safetensors") as client:
        assert [r["id"] for r in client.get("/api/runs").json()["runs"]] == ["study/ada"]
        nets = client.get("/api/networks").json()
        assert nets["first"] == "study/ada/network-snapshot-000000.safetensors"
    with _client(nested) as client:  # the root may be a run itself
        runs = client.get("/api/runs").json()["runs"]
        assert [r["id"] for r in runs] == ["."] and runs[0]["name"] == "ada"
        assert client.get("/api/run", params={"id": "."}).json()["kimg"] == pytest.approx([0.016, 0.032])


def test_many_pollers_while_a_run_is_written(run_copy):
    """16 clients poll while a writer appends stats in pieces: every answer is whole JSON, never an error."""
    root, run = run_copy
    stats = run / "stats.jsonl"
    errors, counts = [], []
    stop = threading.Event()

    def writer():
        for i in range(40):
            line = json.dumps({"Progress/kimg": 0.05 + i * 0.01, "Loss/G/loss": 1.0 + i}) + "\n"
            with open(stats, "a") as f:
                f.write(line[:10])
                f.flush()
                time.sleep(0.002)
                f.write(line[10:])
            time.sleep(0.003)
        stop.set()

    with _client(root) as client:
        def poller():
            while not stop.is_set():
                for url in ("/api/runs", "/api/run?id=tiny"):
                    resp = client.get(url)
                    if resp.status_code != 200:
                        errors.append((url, resp.status_code, resp.text))
                    elif "kimg" in resp.json():
                        counts.append(len(resp.json()["kimg"]))

        threads = [threading.Thread(target=writer)] + [threading.Thread(target=poller) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors
        assert counts and all(2 <= c <= 42 for c in counts)
        assert len(client.get("/api/run?id=tiny").json()["kimg"]) == 42


def test_conditional_network_class_picker(tmp_path, tiny_cfgs):
    import torch

    from adagan.io import save_networks
    from adagan.networks import Generator

    g_cfg, _ = tiny_cfgs
    torch.manual_seed(0)
    G = Generator(g_cfg(16, c_dim=3)).eval()
    save_networks(tmp_path / "cond.safetensors", G=G)
    with _client(tmp_path) as client:
        assert client.get("/api/network", params={"file": "cond.safetensors"}).json()["c_dim"] == 3
        renders = [client.get("/api/render/grid", params={"file": "cond.safetensors", "seeds": "0-1", "class": k})
                   for k in (0, 2)]
        assert all(r.status_code == 200 for r in renders) and renders[0].content != renders[1].content
        missing = client.get("/api/render/grid", params={"file": "cond.safetensors", "seeds": "0"})
        assert missing.status_code == 422 and "conditional" in missing.json()["error"]
        wrong = client.get("/api/render/grid", params={"file": "cond.safetensors", "seeds": "0", "class": 3})
        assert wrong.status_code == 422 and "out of range" in wrong.json()["error"]


def test_files_linked_out_of_the_root_are_never_read(run_copy, tmp_path):
    """Not only served files: log.txt, config.json, stats.jsonl, metric-*.jsonl, grids and snapshots that
    are symlinks to files outside the folder read as missing (issue 26, item 1)."""
    root, run = run_copy
    out = tmp_path / "outside"
    out.mkdir()
    (out / "log.txt").write_text("root:x:0:0:SECRET-LOG-LINE\n")
    (out / "config.json").write_text(json.dumps({"kimg": 777, "data": "SECRET-CONFIG"}))
    (out / "stats.jsonl").write_text(json.dumps({"Progress/kimg": 999.0, "Loss/G/loss": 5.0}) + "\n")
    (out / "metric.jsonl").write_text(json.dumps({"kimg": 1.0, "results": {"leak1k": 1.0}}) + "\n")
    (out / "grid.png").write_bytes((run / "reals.png").read_bytes())
    (out / "net.safetensors").write_bytes((run / "network-snapshot-000000.safetensors").read_bytes())
    for name, target in [("log.txt", "log.txt"), ("config.json", "config.json"), ("stats.jsonl", "stats.jsonl"),
                         ("metric-leak1k.jsonl", "metric.jsonl"), ("fakes000099.png", "grid.png"),
                         ("reals.png", "grid.png"), ("network-snapshot-000099.safetensors", "net.safetensors")]:
        (run / name).unlink(missing_ok=True)
        os.symlink(out / target, run / name)
    os.symlink(out / "net.safetensors", root / "loose.safetensors")
    os.symlink(run / "network-snapshot-000000.safetensors", root / "inside-link.safetensors")  # stays inside
    with _client(root) as client:
        runs = client.get("/api/runs")
        detail = client.get("/api/run", params={"id": "tiny"})
        nets = client.get("/api/networks").json()["networks"]
    text = runs.text + detail.text + json.dumps(nets)
    for leak in ("SECRET", "777", "999", "leak1k", "000099", "loose"):
        assert leak not in text, leak
    d = detail.json()
    assert d["config"] == {} and d["kimg"] == [] and d["metrics"] == {} and d["reals"] is None
    assert [g["label"] for g in d["grids"]] == ["init", "0 kimg"]
    assert runs.json()["runs"][0]["status"]["last_log"] == ""
    assert "inside-link.safetensors" in {n["file"] for n in nets}


def test_loopback_host_checks_for_ipv6_and_other_addresses(studio_root):
    """DNS rebinding is refused on any loopback address, IPv6 included, and the printed address works."""
    from adagan.studio.app import loopback_hosts

    assert loopback_hosts("0.0.0.0") is None and loopback_hosts("192.168.1.2") is None
    for host, url in [("::1", "http://[::1]:8750"), ("127.0.0.2", "http://127.0.0.2:8750"),
                      ("127.0.0.1", "http://localhost:8750"), ("localhost", "http://127.0.0.1")]:
        app = create_app(studio_root, allowed_hosts=loopback_hosts(host))
        with TestClient(app, base_url=url) as client:
            assert client.get("/api/runs").status_code == 200, (host, url)
        with TestClient(app, base_url="http://evil.example:8750") as client:
            resp = client.get("/api/runs")
            assert resp.status_code == 400 and "Host" in resp.json()["error"], host
        with TestClient(app, base_url="http://[::1]") as client:
            assert client.get("/api/runs", headers={"Host": "evil.example"}).status_code == 400


def test_download_names_follow_rfc6266(run_copy):
    """A name with non-ASCII letters, quotes, CR/LF: `filename*` carries it in UTF-8, the ASCII fallback
    `filename` has none of the characters that would break the header (issue 26, item 3)."""
    from urllib.parse import unquote

    root, run = run_copy
    data = (run / "network-snapshot-000000.safetensors").read_bytes()
    names = {"réseau-ü": "réseau-ü", 'quo"te\\d': 'quo"te_d', "cr\rlf\nx": "cr_lf_x"}
    with _client(root) as client:
        for stem, shown in names.items():
            (root / f"{stem}.safetensors").write_bytes(data)
            resp = client.get("/api/render/grid", params={"file": f"{stem}.safetensors", "seeds": "0",
                                                          "download": 1})
            assert resp.status_code == 200, stem
            cd = resp.headers["content-disposition"]
            assert cd.isascii() and not set(cd) & {"\r", "\n"}
            kind, fallback, star = cd.split("; ")
            assert kind == "attachment"
            assert fallback.startswith('filename="') and fallback.endswith('"')
            assert '"' not in fallback[10:-1] and "\\" not in fallback
            assert star.startswith("filename*=UTF-8''")
            assert unquote(star[len("filename*=UTF-8''"):]) == f"{shown}-seeds0-0-psi1.png"


def test_huge_style_range_is_refused_before_it_is_expanded(studio_root, monkeypatch):
    import adagan.inference as inf

    built = []
    real = inf.parse_range

    def spy(*args, **kwargs):
        values = real(*args, **kwargs)
        built.append(len(values))
        return values

    monkeypatch.setattr(inf, "parse_range", spy)
    with _client(studio_root) as client:
        resp = client.get("/api/render/mix", params={"file": SNAP, "rows": "1,2", "cols": "1,2",
                                                     "styles": "0-999999"})
        assert resp.status_code == 422 and "styles" in resp.json()["error"]
        assert max(built, default=0) <= 64  # no list of a million layers was built first
        resp = client.get("/api/render/grid", params={"file": SNAP, "seeds": "0-4294967295"})
        assert resp.status_code == 422 and "at most 64" in resp.json()["error"]
        assert max(built, default=0) <= 64


def _age(run, seconds):
    old = time.time() - seconds
    for name in ("stats.jsonl", "log.txt"):
        os.utime(run / name, (old, old))


def test_killed_run_has_no_eta_and_finished_etag_is_stable(run_copy, monkeypatch):
    root, run = run_copy
    with _client(root) as client:
        done = client.get("/api/run", params={"id": "tiny"})
        assert done.json()["status"]["state"] == "done"
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + 3600)  # an hour later: a done run is unchanged
        again = client.get("/api/run", params={"id": "tiny"}, headers={"If-None-Match": done.headers["etag"]})
        assert again.status_code == 304
        monkeypatch.setattr(time, "time", real_time)

        cfg = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**cfg, "kimg": 100}))
        (run / "log.txt").write_text("tick 2 kimg 0.0\n")  # killed: no "Done:" line
        running = client.get("/api/run", params={"id": "tiny"}).json()["status"]
        assert running["state"] == "running" and running["eta_s"] > 0
        _age(run, 3600)
        idle = client.get("/api/run", params={"id": "tiny"}).json()["status"]
        assert idle["state"] == "idle" and idle["eta_s"] is None
        assert client.get("/api/runs").json()["runs"][0]["status"]["eta_s"] is None


def test_running_run_etag_changes_when_it_turns_idle(run_copy, monkeypatch):
    root, run = run_copy
    (run / "log.txt").write_text("tick 2 kimg 0.0\n")
    with _client(root) as client:
        first = client.get("/api/run", params={"id": "tiny"})
        assert first.json()["status"]["state"] == "running"
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
        later = client.get("/api/run", params={"id": "tiny"}, headers={"If-None-Match": first.headers["etag"]})
        assert later.status_code == 200 and later.json()["status"]["state"] == "idle"


@pytest.mark.parametrize("url", ["/", "/static/studio.js", "/api/runs", "/api/run?id=tiny", "/files/tiny/reals.png",
                                 "/files/missing.png", f"/api/render/grid?file={SNAP}&seeds=0",
                                 "/api/render/grid?file=x"])
def test_every_answer_has_the_security_headers(studio_root, url):
    with _client(studio_root) as client:
        resp = client.get(url)
        assert resp.headers["x-content-type-options"] == "nosniff", url
        csp = resp.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert resp.headers["x-frame-options"] == "DENY"
