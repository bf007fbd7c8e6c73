"""The plugin manager: loads the ``capsnet_nncf_plugin`` entry points lazily, on first use.

Every entry point is loaded and registered on its own: a third-party plugin that fails to import or whose
hooks raise is recorded (:func:`plugin_report`, ``capsq plugins``) with its name and error, and the others
still load. The package's own plugin (``builtin_plugin``) is different: its failure is a bug in the package
or a broken installation, never something to work around, so it raises :class:`BuiltinPluginError`.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from capsnet_nncf_plugin.errors import ConfigError
from capsnet_nncf_plugin.hookspecs import PROJECT, CapsnetHooks

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = PROJECT
BUILTIN_MODULE = "capsnet_nncf_plugin.builtin_plugin"


class BuiltinPluginError(RuntimeError):
    """The package's own plugin failed to load or one of its hooks raised: a bug or a broken installation.

    Not a :class:`~capsnet_nncf_plugin.errors.CapsqError`: nothing the user passed is wrong, and the
    traceback (chained to the original error) is what a bug report needs.
    """


def _builtin_failure(what: str, error: BaseException) -> BuiltinPluginError:
    return BuiltinPluginError(
        f"the built-in plugin {BUILTIN_MODULE} failed ({what}: {type(error).__name__}: {error}); this is a "
        "bug in capsnet_nncf_plugin or a broken installation: reinstall it (`pip install -e .` in a "
        "checkout) and report it if it persists"
    )


def _is_builtin(plugin: object) -> bool:
    return getattr(plugin, "__name__", None) == BUILTIN_MODULE


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None
    provides: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


_manager: pluggy.PluginManager | None = None
_plugins: list[PluginInfo] = []
#: Counts plugin-manager resets, so registries built from the plugins' hooks know when to rebuild.
_generation = 0


def _load_entry_point(manager: pluggy.PluginManager, entry_point: metadata.EntryPoint) -> PluginInfo:
    distribution = entry_point.dist.name if entry_point.dist is not None else None
    info = PluginInfo(entry_point.name, entry_point.value, distribution)
    try:
        module = entry_point.load()
        manager.register(module, name=entry_point.name)
    except Exception as error:  # a broken third-party plugin must not break the others
        if entry_point.value.partition(":")[0].strip() == BUILTIN_MODULE:
            raise _builtin_failure("loading", error) from error
        info.error = f"{type(error).__name__}: {error}"
        logger.warning("plugin %s (%s) failed to load: %s", entry_point.name, entry_point.value, info.error)
    return info


def get_plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, with every ``capsnet_nncf_plugin`` entry point registered."""
    global _manager
    if _manager is None:
        manager = pluggy.PluginManager(PROJECT)
        manager.add_hookspecs(CapsnetHooks)
        plugins = [_load_entry_point(manager, ep) for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
        if not any(p.module == BUILTIN_MODULE for p in plugins):
            # A source tree used without `pip install` has no entry points; its built-ins still load.
            try:
                manager.register(importlib.import_module(BUILTIN_MODULE), name="builtin")
            except Exception as error:
                raise _builtin_failure("loading", error) from error
            plugins.insert(0, PluginInfo("builtin", BUILTIN_MODULE, None))
        _plugins[:] = plugins
        _manager = manager
    return _manager


def reset_plugin_manager() -> None:
    """Forget the loaded plugins (the next use loads the entry points again); for tests and notebooks."""
    global _manager, _generation
    _manager = None
    _plugins.clear()
    _generation += 1


def generation() -> int:
    """How many times the plugins were reset: a registry built from them rebuilds when this changes."""
    return _generation


def collect(hook_name: str) -> dict[Any, Any]:
    """Merge what every plugin's ``hook_name`` returns; a third-party plugin whose hook raises is reported,
    not fatal; the built-in plugin's raises :class:`BuiltinPluginError`."""
    manager = get_plugin_manager()
    merged: dict[Any, Any] = {}
    for name, plugin in manager.list_name_plugin():
        implementation = getattr(plugin, hook_name, None)
        if implementation is None:
            continue
        try:
            provided = dict(implementation() or {})
        except Exception as error:
            if _is_builtin(plugin):
                raise _builtin_failure(hook_name, error) from error
            _record_error(name, f"{hook_name}: {type(error).__name__}: {error}")
            continue
        merged.update(provided)
        _provides(name)[hook_name] = sorted(str(getattr(k, "__name__", k)) for k in provided)
    return merged


def _provides(name: str) -> dict[str, list[str]]:
    for info in _plugins:
        if info.name == name:
            return info.provides
    info = PluginInfo(name, name, None)
    _plugins.append(info)
    return info.provides


def _record_error(name: str, message: str) -> None:
    logger.warning("plugin %s: %s", name, message)
    for info in _plugins:
        if info.name == name:
            info.error = message if info.error is None else f"{info.error}; {message}"


HOOKS = (
    "capsnet_allocation_methods",
    "capsnet_observers",
    "capsnet_export_forms",
    "capsnet_capture_recognizers",
)


def plugin_report() -> list[PluginInfo]:
    """Every plugin found, what it provides (per hook) and its error if it failed."""
    get_plugin_manager()
    for hook in HOOKS:
        collect(hook)
    return list(_plugins)


def get_observer(name: str) -> Any:
    """An observer class registered by a plugin; the built-ins are ``pot``, ``pot-per-channel``,
    ``pot-activation`` and ``fixed-range``. Use it as ``QConfig(activation=cls.with_args(...), ...)``."""
    observers = collect("capsnet_observers")
    if name not in observers:
        raise ConfigError(f"unknown observer {name!r}; available: {', '.join(sorted(observers))}")
    return observers[name]
