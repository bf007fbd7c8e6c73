"""The plugin's own contributions, registered through its ``capsnet_nncf_plugin`` entry point."""

from __future__ import annotations

from typing import Any

from capsnet_nncf_plugin.hookspecs import hookimpl


@hookimpl
def capsnet_allocation_methods() -> dict[str, Any]:
    from capsnet_nncf_plugin.allocation.methods.builtin import BUILTIN_METHODS

    return dict(BUILTIN_METHODS)


@hookimpl
def capsnet_observers() -> dict[str, Any]:
    from capsnet_nncf_plugin.observers import (
        FixedRangeObserver,
        PowerOfTwoObserver,
        PowerOfTwoPerChannelObserver,
    )
    from capsnet_nncf_plugin.observers.activation_observer import PowerOfTwoActivationObserver

    return {
        "pot": PowerOfTwoObserver,
        "pot-per-channel": PowerOfTwoPerChannelObserver,
        "pot-activation": PowerOfTwoActivationObserver,
        "fixed-range": FixedRangeObserver,
    }


@hookimpl
def capsnet_export_forms() -> dict[type, Any]:
    from capsnet_nncf_plugin.export.forms import BUILTIN_EXPORT_FORMS

    return dict(BUILTIN_EXPORT_FORMS)


@hookimpl
def capsnet_capture_recognizers() -> dict[str, Any]:
    from capsnet_nncf_plugin.capture.recognizers import BUILTIN_RECOGNIZERS

    return dict(BUILTIN_RECOGNIZERS)


@hookimpl
def capsnet_nncf_metatypes() -> dict[str, Any]:
    from capsnet_nncf_plugin.nncf.metatypes import CAPSULE_METATYPES

    return {metatype.__name__: metatype for metatype in CAPSULE_METATYPES}
