"""pyproject.toml's extras: each installs what adagan imports, nothing it does not (docs/using.md)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# pip name -> the module adagan imports
MODULE = {"tensorboard": "torch.utils.tensorboard"}
LOADED_BY_OTHERS = {"imageio-ffmpeg"}  # imageio's ffmpeg backend: imageio loads it, adagan does not import it


def _extras() -> dict[str, list[str]]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _src_text() -> str:
    return "\n".join(p.read_text() for p in (ROOT / "src").rglob("*.py"))


def test_every_extra_package_is_imported_by_adagan():
    src = _src_text()
    for extra, reqs in _extras().items():
        if extra == "test":
            continue
        for req in reqs:
            name = re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0]
            if name in LOADED_BY_OTHERS:
                continue
            module = MODULE.get(name, name.replace("-", "_"))
            assert re.search(rf"^\s*(import|from) {re.escape(module)}\b", src, re.M), (extra, name)


def test_tensorboard_has_an_extra_and_docs():
    assert any(r.startswith("tensorboard") for r in _extras()["tensorboard"])
    assert ".[tensorboard]" in (ROOT / "docs" / "training.md").read_text()


def test_readme_set_up_is_true():
    readme = (ROOT / "README.md").read_text()
    setup = readme[readme.index("## Set up"):readme.index("## Commands")]
    assert "pins the CPU build" not in setup  # PyPI's Linux torch==2.13.0 is the CUDA build
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in setup
    assert "python3 -m venv .venv && . .venv/bin/activate" in setup and "git clone" in setup
    # the two set-up commands; .ci/run runs the second one
    assert "pip install torch==2.13.0 -e . && adagan train" in setup
    test_command = "pip install torch==2.13.0 -e '.[test]' && python -m pytest -q"
    assert test_command in setup
    assert test_command.replace("install ", "install -q ") in (ROOT / ".ci" / "run").read_text()
