"""The top-level `adagan` command."""

import subprocess
import sys


def test_help_lists_commands(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0
    assert "Usage: adagan" in out


def test_unknown_command_is_one_line_error(run_cli):
    code, _, err = run_cli("no-such-command")
    assert code == 2
    assert "No such command" in err
    assert "Traceback" not in err


def test_python_dash_m_works():
    r = subprocess.run([sys.executable, "-m", "adagan", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "Usage: adagan" in r.stdout
