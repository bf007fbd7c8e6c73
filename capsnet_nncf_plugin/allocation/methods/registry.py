"""The registry of allocation methods: name -> ``method(context) -> BitAllocation``.

The built-in methods and any third party's arrive through the plugin hooks (``capsnet_nncf_plugin``
entry points); :func:`register_method` adds one directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from capsnet_nncf_plugin import plugins
from capsnet_nncf_plugin.errors import ConfigError

if TYPE_CHECKING:
    from capsnet_nncf_plugin.allocation.methods.context import SearchContext
    from capsnet_nncf_plugin.core.bit_allocation import BitAllocation

AllocationMethod = Callable[["SearchContext"], "BitAllocation"]

_METHODS: dict[str, AllocationMethod] = {}
#: The plugin generation the methods were collected from (``None``: not yet collected).
_loaded_generation: int | None = None


def register_method(name: str, method: AllocationMethod, replace: bool = False) -> None:
    """Make ``method`` available as ``name`` (an error if the name is taken, unless ``replace``)."""
    if not name or not isinstance(name, str):
        raise ValueError(f"an allocation method needs a non-empty name, got {name!r}")
    if name in _METHODS and not replace and _METHODS[name] is not method:
        raise ValueError(f"allocation method {name!r} is already registered; pick another name")
    _METHODS[name] = method


def _load() -> None:
    global _loaded_generation
    if _loaded_generation == plugins.generation():
        return
    if _loaded_generation is not None:  # the plugins were reset since: what they gave is gone
        _METHODS.clear()
    _loaded_generation = plugins.generation()
    for name, method in plugins.collect("capsnet_allocation_methods").items():
        register_method(name, method, replace=True)


def reset() -> None:
    """Drop every method; the next lookup collects them from the plugins again."""
    global _loaded_generation
    _loaded_generation = None
    _METHODS.clear()


def available_methods() -> list[str]:
    _load()
    return sorted(_METHODS)


def get_method(name: str) -> AllocationMethod:
    _load()
    if name not in _METHODS:
        raise ConfigError(f"unknown allocation method {name!r}; available: {', '.join(available_methods())}")
    return _METHODS[name]
