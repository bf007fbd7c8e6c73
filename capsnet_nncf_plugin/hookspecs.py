"""The plugin hooks, in one place: what a ``capsnet_nncf_plugin`` entry point may provide.

A plugin is a module (named by an entry point in the group ``capsnet_nncf_plugin``) with functions marked
``@hookimpl``. Each hook returns a mapping ``name -> object``; the plugin's contributions are merged into
the registries the plugin manager serves. The built-ins (``capsnet_nncf_plugin.builtin_plugin``) are
registered exactly like that, through this package's own entry point.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "capsnet_nncf_plugin"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class CapsnetHooks:
    @hookspec
    def capsnet_allocation_methods(self) -> dict[str, Any]:
        """Bit-width allocation methods: ``name -> method(context) -> BitAllocation``."""

    @hookspec
    def capsnet_observers(self) -> dict[str, Any]:
        """Observer classes usable in a ``QConfig`` (``cls.with_args(...)``), by name."""

    @hookspec
    def capsnet_export_forms(self) -> dict[type, Any]:
        """ONNX export forms: ``quantized module class -> builder(module, input_format, narrowing,
        options)`` returning the module's export form (see capsnet_nncf_plugin/export/forms.py)."""

    @hookspec
    def capsnet_capture_recognizers(self) -> dict[str, Any]:
        """Capsule-pattern recognizers for ``capture`` (``name -> recognize(context) -> list[Match]``, run in
        the order of their ``order`` attribute; see docs/capture.md)."""

    @hookspec
    def capsnet_nncf_metatypes(self) -> dict[str, Any]:
        """NNCF operator metatypes (``PTOperatorMetatype`` subclasses) for capsule functions, by name;
        the NNCF adapter registers them in NNCF's registry before it quantizes."""
