"""Shared pytest setup: CUDA/slow markers, deterministic threads."""

import importlib.util
from pathlib import Path

import pytest
import torch

from adagan.config import DiscriminatorConfig, GeneratorConfig


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    run_slow = config.getoption("--runslow")
    has_cuda = torch.cuda.is_available()
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: pass --runslow to run"))
        if "cuda" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


@pytest.fixture(scope="session")
def load_benchmark():
    """load_benchmark("grid_hue") -> the module benchmarks/grid_hue.py (benchmarks/ is not a package)."""
    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    return load


@pytest.fixture
def run_cli(capsys):
    """Run the `adagan` CLI in-process: returns (exit_code, stdout, stderr).

    Goes through `adagan.cli.main.main`, so user errors come out exactly as a
    user sees them (one `Error: ...` line, exit code 1), not as exceptions.
    """
    from adagan.cli.main import main

    def run(*args: str):
        capsys.readouterr()
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def tiny_g(res=16, c_dim=0, img_channels=3, **kw) -> GeneratorConfig:
    """A generator config small enough for fast CPU tests (16 channels, 2 mapping layers)."""
    base = dict(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=res, img_channels=img_channels,
                channel_base=16 * res, channel_max=16, map_layers=2)
    base.update(kw)
    return GeneratorConfig(**base)


def tiny_d(res=16, c_dim=0, img_channels=3, **kw) -> DiscriminatorConfig:
    base = dict(c_dim=c_dim, img_resolution=res, img_channels=img_channels, channel_base=16 * res,
                channel_max=16, cmap_dim=16, map_layers=2, mbstd_group_size=2)
    base.update(kw)
    return DiscriminatorConfig(**base)


@pytest.fixture
def tiny_cfgs():
    """(tiny_g, tiny_d) config factories (test modules cannot import conftest under importlib mode)."""
    return tiny_g, tiny_d
