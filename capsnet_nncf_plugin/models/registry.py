"""Model architectures by name: ``create("shallowcaps", ...)``."""

from __future__ import annotations

from typing import Any

from capsnet_nncf_plugin.models.base import CapsuleClassifier
from capsnet_nncf_plugin.models.deepcaps import DeepCaps
from capsnet_nncf_plugin.models.shallowcaps import ShallowCaps

_ARCHITECTURES: dict[str, type[CapsuleClassifier]] = {
    ShallowCaps.name: ShallowCaps,
    DeepCaps.name: DeepCaps,
}


def available_models() -> list[str]:
    """Names accepted by :func:`create`."""
    return sorted(_ARCHITECTURES)


def create(
    name: str, in_channels: int = 1, image_size: int = 28, num_classes: int = 10, **options: Any
) -> CapsuleClassifier:
    """Builds an untrained model; ``options`` are the architecture's own (``decoder``, ``class_bias``...)."""
    key = name.lower()
    if key not in _ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    try:
        return _ARCHITECTURES[key](
            in_channels=in_channels, image_size=image_size, num_classes=num_classes, **options
        )
    except TypeError as error:
        raise ValueError(f"bad option for model {key!r}: {error}") from error
