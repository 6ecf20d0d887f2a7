"""adagan's cache folder: converted built-in datasets (`datasets/`), detector weights (`weights/`)
and real-image metric features (`metrics/`).

`$ADAGAN_CACHE` moves the whole folder. `$ADAGAN_CACHE_DIR`, the name the built-in datasets used
before, still works as a deprecated alias (when both are set, ADAGAN_CACHE wins). Default:
platformdirs' user cache dir for "adagan" (`~/.cache/adagan` on Linux). Imports nothing from adagan,
so every layer may use it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

ENV = "ADAGAN_CACHE"
DEPRECATED_ENV = "ADAGAN_CACHE_DIR"


def cache_env() -> str | None:
    """The environment variable that sets the cache folder now (None: the platform default)."""
    for name in (ENV, DEPRECATED_ENV):
        if os.environ.get(name):
            return name
    return None


def cache_dir() -> Path:
    """Root of adagan's cache (see the module docstring)."""
    name = cache_env()
    if name is None:
        import platformdirs

        return Path(platformdirs.user_cache_dir("adagan"))
    if name == DEPRECATED_ENV:
        warnings.warn(f"{DEPRECATED_ENV} is deprecated; set {ENV} instead", DeprecationWarning, stacklevel=2)
    return Path(os.environ[name]).expanduser()
