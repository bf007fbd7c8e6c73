"""Quantized modules reused across the conversions of one calibrated model (``SharedCalibration``).

An allocation search converts dozens of allocations of one model that differ in a layer or two. Every
other layer freezes into the same quantized module as before: the same float layer (the model is the
shared calibration's own copy), the same formats, input width, element counts and weight codes. Building
one quantizes its weights and copies its float layer, and its weight observer observes the weight again
(its MSE search is remembered by ``core.clipping`` already, but only after hashing the weight's content,
4 ms a layer): on DeepCaps, a candidate took 283 ms from allocation to keyed model
(with the prefix cache's hashing of every module), 99 ms with the reuse below.

While a :class:`ModuleReuse` is active, :meth:`ObservedModule.to_quantized
<capsnet_nncf_plugin.fx.observed.ObservedModule.to_quantized>` looks its quantized module up by the
module's name in the model and by every argument of the quantized module's constructor, and builds it only
when that combination is new; each weight's format is kept the same way, by the observer's class and
arguments. The integer models then share those modules, which is safe because they are inference forms
that nothing modifies in place; ``SharedCalibration(share_modules=True)`` is the opt-in.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch

_active: contextvars.ContextVar[ModuleReuse | None] = contextvars.ContextVar("module_reuse", default=None)


def active_module_reuse() -> ModuleReuse | None:
    """The :class:`ModuleReuse` of the conversion running now, if any."""
    return _active.get()


def _key(value: Any, held: list[torch.Tensor]) -> Any:
    """A hashable stand-in for a constructor argument. A tensor (GPTQ's weight codes, kept per layer and
    grid by the shared calibration) stands for itself, by identity: it is held with the module, so the
    identity cannot pass to another tensor while the entry exists."""
    if isinstance(value, torch.Tensor):
        held.append(value)
        return ("tensor", id(value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((key, _key(item, held)) for key, item in value.items())))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_key(item, held) for item in value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return (type(value).__qualname__, tuple(_key(getattr(value, f.name), held) for f in fields))
    hash(value)  # anything else must be a plain value; an unhashable one is a bug to surface here
    return value


class ModuleReuse:
    """Quantized modules (and weight formats) by name in the model and arguments; ``built`` and ``reused``
    count the requests that built one and that found one."""

    def __init__(self) -> None:
        self._built: dict[tuple, tuple[Any, list[torch.Tensor]]] = {}
        self.built = 0
        self.reused = 0

    @contextlib.contextmanager
    def active(self) -> Iterator[ModuleReuse]:
        """Inside, conversions take their modules from this reuse (see the module doc)."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    def get(self, name: str, arguments: tuple, build: Callable[[], Any]) -> Any:
        """What ``build()`` built before for ``name`` and ``arguments`` (everything it depends on but the
        float layer, which ``name`` stands for), or ``build()``'s result now."""
        held: list[torch.Tensor] = []
        key = (name, _key(arguments, held))
        if key in self._built:
            self.reused += 1
            return self._built[key][0]
        value = build()
        self._built[key] = (value, held)
        self.built += 1
        return value
