import os
import stat
import sys

import pytest

from adagan.files import atomic_write, temp_pattern, write_text

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_file_gets_open_permissions_not_the_temporary_s(tmp_path):
    old = os.umask(0o027)
    try:
        write_text(tmp_path / "a.json", "{}")
        with open(tmp_path / "b.json", "w") as f:  # what a plain open() gives under the same umask
            f.write("{}")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.json") == _mode(tmp_path / "b.json") != 0o600


def test_replacing_keeps_the_file_s_permissions(tmp_path):
    path = tmp_path / "net.safetensors"
    write_text(path, "old")
    os.chmod(path, 0o640)
    write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o640


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "grid.png"
    write_text(path, "old")

    def boom(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, boom)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_temp_pattern_matches_atomic_write_temporaries(tmp_path):
    import re

    seen = []
    atomic_write(tmp_path / "config.json", lambda tmp: seen.append(os.path.basename(tmp)) or open(tmp, "w").close())
    assert re.match(temp_pattern(r"config\.json"), seen[0])
