"""Where fetched datasets live on disk."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV_VAR = "CAPSQ_CACHE"


def cache_dir() -> Path:
    """The plugin's cache root: ``$CAPSQ_CACHE`` if set, else ``~/.cache/capsnet_nncf_plugin``."""
    configured = os.environ.get(CACHE_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "capsnet_nncf_plugin"


def dataset_cache_dir(name: str) -> Path:
    """The folder holding one dataset's official files: ``cache_dir()/datasets/<name>``."""
    return cache_dir() / "datasets" / name
