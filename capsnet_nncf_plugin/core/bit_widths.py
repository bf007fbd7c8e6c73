"""Per-layer bit-widths: ``LayerBits`` (weights, output activation, routing) and ``RoutingBits``.

Dynamic routing has four tensors per iteration: the logits b, the coupling coefficients c, the
pre-activations s and the routed capsules v. ``RoutingBits`` gives each a width, per iteration where the
allocation wants it (the paper's dynamic-routing granularity).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from capsnet_nncf_plugin.core.integer_format import check_bits

#: The dynamic-routing tensors an allocation gives widths to: b, c, s and v.
ROUTING_TENSORS = ("logits", "coupling", "pre_activation", "output")
#: Their names in the papers' notation (and in quantization point names such as ``class_caps.c[0]``).
ROUTING_SYMBOLS = {"logits": "b", "coupling": "c", "pre_activation": "s", "output": "v"}
#: Width of every tensor an allocation does not name.
DEFAULT_BITS = 8


def routing_entries(tensor: str, iterations: int) -> int:
    """How many widths routing tensor ``tensor`` has in a layer that routes ``iterations`` times: one per
    logit update for ``logits`` (b starts at 0, so there are ``iterations - 1``), one per iteration else."""
    if tensor not in ROUTING_TENSORS:
        raise ValueError(f"unknown routing tensor {tensor!r}; use one of {', '.join(ROUTING_TENSORS)}")
    return iterations - 1 if tensor == "logits" else iterations


def _check_width(value: Any, argument: str) -> int:
    # A width read from a file may be 4.9 or "4": refuse it rather than truncate it.
    return check_bits(value, argument)


@dataclass(frozen=True)
class RoutingBits:
    """Bit-widths of the dynamic-routing tensors, one entry per iteration (a single int means all).

    ``logits`` (b) has one entry per logit update (iterations - 1); ``coupling`` (c), ``pre_activation``
    (s) and ``output`` (v) one per iteration.
    """

    logits: int | tuple[int, ...] = DEFAULT_BITS
    coupling: int | tuple[int, ...] = DEFAULT_BITS
    pre_activation: int | tuple[int, ...] = DEFAULT_BITS
    output: int | tuple[int, ...] = DEFAULT_BITS

    def __post_init__(self) -> None:
        for name in ROUTING_TENSORS:
            values = getattr(self, name)
            if isinstance(values, list):
                values = tuple(values)
                object.__setattr__(self, name, values)
            for value in self._entries(name):
                _check_width(value, f"routing {name} bits")

    def per_iteration(self, name: str, count: int) -> tuple[int, ...]:
        """The bits of tensor ``name`` for each of ``count`` iterations (or updates)."""
        values = getattr(self, name)
        if isinstance(values, int):
            return (values,) * count
        if len(values) != count:
            raise ValueError(
                f"routing {name} bits {values} give {len(values)} entries; the layer needs {count}"
            )
        return tuple(values)

    def with_entry(self, name: str, index: int, bits: int, count: int) -> RoutingBits:
        """A copy with tensor ``name`` at ``bits`` in iteration (or update) ``index`` of ``count`` only."""
        values = list(self.per_iteration(name, count))
        values[index] = bits
        return replace(self, **{name: tuple(values)})

    def with_tensor(self, name: str, bits: int) -> RoutingBits:
        """A copy with tensor ``name`` at ``bits`` in every iteration."""
        if name not in ROUTING_TENSORS:
            raise ValueError(f"unknown routing tensor {name!r}; use one of {', '.join(ROUTING_TENSORS)}")
        return replace(self, **{name: bits})

    def check_iterations(self, iterations: int, where: str) -> None:
        """Raise ``ValueError`` unless every per-iteration tuple fits a layer routing ``iterations`` times."""
        for name in ROUTING_TENSORS:
            values = getattr(self, name)
            expected = routing_entries(name, iterations)
            if isinstance(values, tuple) and len(values) != expected:
                raise ValueError(
                    f"{where}: routing {name} has {len(values)} entries but the layer routes {iterations} "
                    f"times and needs {expected}; give {expected} widths or one for all"
                )

    def widths(self) -> set[int]:
        """Every width used by any tensor in any iteration."""
        return {width for name in ROUTING_TENSORS for width in self._entries(name)}

    def _entries(self, name: str) -> tuple[int, ...]:
        values = getattr(self, name)
        return values if isinstance(values, tuple) else (values,)

    def to_json(self) -> dict[str, int | list[int]]:
        return {
            name: list(values) if isinstance(values := getattr(self, name), tuple) else values
            for name in ROUTING_TENSORS
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | int) -> RoutingBits:
        """One width for every tensor (an int), or a mapping of tensor names to a width or per-iteration
        widths; unknown names and non-integer widths are refused."""
        if isinstance(data, RoutingBits):
            return data
        if isinstance(data, int) and not isinstance(data, bool):
            return cls(data, data, data, data)
        if not isinstance(data, Mapping):
            raise ValueError(
                f"routing bits must be one width or an object with keys {', '.join(ROUTING_TENSORS)}, "
                f"got {data!r}"
            )
        unknown = sorted(set(data) - set(ROUTING_TENSORS))
        if unknown:
            raise ValueError(f"unknown routing tensors {unknown}; use {', '.join(ROUTING_TENSORS)}")
        values = {}
        for key, value in data.items():
            if isinstance(value, list | tuple):
                values[key] = tuple(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                values[key] = value
            else:
                raise ValueError(f"routing {key} bits must be a width or a list of widths, got {value!r}")
        return cls(**values)


@dataclass(frozen=True)
class LayerBits:
    """Bit-widths of one layer: its weights, its output activation and, for routing layers, routing."""

    weight: int = DEFAULT_BITS
    activation: int = DEFAULT_BITS
    routing: RoutingBits = field(default_factory=RoutingBits)

    def __post_init__(self) -> None:
        _check_width(self.weight, "weight_bits")
        _check_width(self.activation, "activation_bits")
        if not isinstance(self.routing, RoutingBits):
            object.__setattr__(self, "routing", RoutingBits.from_dict(self.routing))

    def to_json(self) -> dict[str, Any]:
        return {"weight": self.weight, "activation": self.activation, "routing": self.routing.to_json()}

    @classmethod
    def from_dict(cls, data: Any) -> LayerBits:
        """``LayerBits`` from ``{"weight": w, "activation": a, "routing": ...}`` (missing keys: 8 bits);
        unknown keys and non-integer widths are refused."""
        if isinstance(data, LayerBits):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(f"a layer's bits must be an object with keys {sorted(LAYER_KEYS)}, got {data!r}")
        unknown = sorted(set(data) - set(LAYER_KEYS))
        if unknown:
            raise ValueError(f"unknown keys {unknown}; a layer's bits have the keys {list(LAYER_KEYS)}")
        return cls(
            weight=data.get("weight", DEFAULT_BITS),
            activation=data.get("activation", DEFAULT_BITS),
            routing=RoutingBits.from_dict(data.get("routing", DEFAULT_BITS)),
        )


LAYER_KEYS = ("weight", "activation", "routing")
