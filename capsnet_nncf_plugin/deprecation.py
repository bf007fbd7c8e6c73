"""Names that moved to another module keep working where they were documented, with a warning.

A package lists its moved names and serves them from its module ``__getattr__``::

    __getattr__ = moved_names(__name__, {"LayerBits": "capsnet_nncf_plugin.core.bit_widths"})
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def moved_names(module: str, moved: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving each of ``moved`` (name -> its new module) with a
    ``DeprecationWarning`` that names the new import."""

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} moved: import it from {moved[name]}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(moved[name]), name)

    return __getattr__
