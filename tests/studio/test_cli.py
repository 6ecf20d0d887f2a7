"""The `adagan studio` command: help, refusals, and a real server started and stopped as a user does."""

import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")


def test_help(run_cli):
    code, out, _ = run_cli("studio", "--help")
    assert code == 0
    assert "[RUNS_DIR | NETWORK]" in out and "--host" in out and "127.0.0.1" in out and "--port" in out
    code, out, _ = run_cli("--help")
    assert "studio" in out


@pytest.mark.parametrize("args, message", [
    (["/no/such/folder"], "does not exist"),
    (["--device", "cuda:7"], "CUDA"),
])
def test_refusals_are_one_line_errors(run_cli, studio_root, args, message):
    if args[0] == "--device":
        if __import__("torch").cuda.device_count() > 7:
            pytest.skip("this machine has 8 GPUs")
        args = [str(studio_root), *args]
    code, _, err = run_cli("studio", *args)
    assert code == 1 and message in err and "Traceback" not in err


def test_a_file_that_is_not_a_network_is_refused(run_cli, studio_root):
    code, _, err = run_cli("studio", studio_root / "tiny" / "log.txt")
    assert code == 1 and "not a .safetensors network file" in err


def test_port_in_use_is_a_clear_error(run_cli, studio_root):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        code, _, err = run_cli("studio", studio_root, "--port", port)
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in err


def test_serves_and_stops_on_ctrl_c(studio_root):
    snap = studio_root / "tiny" / "network-snapshot-000000.safetensors"
    proc = subprocess.Popen([sys.executable, "-m", "adagan", "studio", str(snap), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"adagan studio: serving {studio_root / 'tiny'} at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split()[0]
        assert url.endswith("/#generator")  # a network file opens the Generator tab
        base = url.split("#")[0]
        with urllib.request.urlopen(base + "api/networks", timeout=30) as resp:
            assert json.load(resp)["first"] == "network-snapshot-000000.safetensors"
        with urllib.request.urlopen(base, timeout=30) as resp:
            assert b"adagan studio" in resp.read()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "adagan studio stopped." in out and "Traceback" not in out


def _serve(root, *args):
    proc = subprocess.Popen([sys.executable, "-m", "adagan", "studio", str(root), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    assert "adagan studio: serving" in line, line + proc.stdout.read()
    return proc, line.split(" at ")[1].split()[0]


def _status(url, host=None):
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize("host", ["127.0.0.2", "::1"])
def test_loopback_hosts_answer_their_printed_url_and_refuse_rebinding(studio_root, host):
    """`--host 127.0.0.2` answers the URL it prints; `--host ::1` refuses Host: evil.example (issue 26)."""
    try:
        socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET).close()
    except OSError:
        pytest.skip(f"this machine cannot listen on {host}")
    proc, url = _serve(studio_root, "--host", host)
    try:
        assert url.startswith(f"http://[{host}]:" if ":" in host else f"http://{host}:")
        assert _status(url + "api/runs") == 200
        assert _status(url + "api/runs", host="evil.example") == 400
        assert _status(url + "api/runs", host="evil.example:80") == 400
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
