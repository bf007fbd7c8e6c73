"""Capsule-aware QConfigs: power-of-two observers for weights and activations, bits for routing tensors.

A torch ``QConfig`` holds two observer constructors; routing needs more (b, c, s, v per iteration). torch.ao
rebuilds QConfig objects during prepare, keeping only the constructors, so a layer's :class:`RoutingBits`
travel inside its activation-observer constructor (``PowerOfTwoActivationObserver(routing=...)``), where the
plugin's observed routing modules read them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch.ao.quantization import QConfig, QConfigMapping

from capsnet_nncf_plugin.observers import CLIP_MODES, PowerOfTwoPerChannelObserver, check_bits
from capsnet_nncf_plugin.observers.activation_observer import PowerOfTwoActivationObserver

#: The dynamic-routing tensors an allocation gives widths to: b, c, s and v.
ROUTING_TENSORS = ("logits", "coupling", "pre_activation", "output")


def routing_entries(tensor: str, iterations: int) -> int:
    """How many widths routing tensor ``tensor`` has in a layer that routes ``iterations`` times: one per
    logit update for ``logits`` (b starts at 0, so there are ``iterations - 1``), one per iteration else."""
    if tensor not in ROUTING_TENSORS:
        raise ValueError(f"unknown routing tensor {tensor!r}; use one of {', '.join(ROUTING_TENSORS)}")
    return iterations - 1 if tensor == "logits" else iterations


@dataclass(frozen=True)
class RoutingBits:
    """Bit-widths of the dynamic-routing tensors, one entry per iteration (a single int means all).

    ``logits`` (b) has one entry per logit update (iterations - 1); ``coupling`` (c), ``pre_activation``
    (s) and ``output`` (v) one per iteration.
    """

    logits: int | tuple[int, ...] = 8
    coupling: int | tuple[int, ...] = 8
    pre_activation: int | tuple[int, ...] = 8
    output: int | tuple[int, ...] = 8

    def __post_init__(self) -> None:
        for name in ROUTING_TENSORS:
            values = getattr(self, name)
            for value in values if isinstance(values, tuple) else (values,):
                check_bits(value, f"routing {name} bits")

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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | int) -> RoutingBits:
        if isinstance(data, int):
            return cls(data, data, data, data)
        unknown = set(data) - set(ROUTING_TENSORS)
        if unknown:
            raise ValueError(
                f"unknown routing tensors {sorted(unknown)}; use logits, coupling, pre_activation, output"
            )
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


@dataclass(frozen=True)
class LayerBits:
    """Bit-widths of one layer: its weights, its output activation and, for routing layers, routing."""

    weight: int = 8
    activation: int = 8
    routing: RoutingBits = field(default_factory=RoutingBits)


#: A weight clipping mode, or a function of the weight bit-width that returns one.
WeightClip = str | Callable[[int], str]


def make_qconfig(
    bits: LayerBits,
    clip: str = "hardware",
    weight_clip: WeightClip = "mse",
    weight_observer: type | None = None,
    activation_observer: type | None = None,
) -> QConfig:
    """The QConfig of one layer: per-channel PoT weights, sign-following PoT activations.

    ``weight_observer``/``activation_observer`` replace the observer classes (e.g. a plugin's, looked up
    with ``plugins.get_observer``): weights get ``bits, clip, signed=True, ch_axis=0``, activations ``bits,
    clip, routing`` (subclass ``PowerOfTwoActivationObserver`` for the latter).
    """
    if clip not in CLIP_MODES:
        raise ValueError(f"clip must be one of {', '.join(CLIP_MODES)}, got {clip!r}")
    check_bits(bits.weight, "weight_bits")
    check_bits(bits.activation, "activation_bits")
    if callable(weight_clip):
        weight_clip = weight_clip(bits.weight)
    weight = (weight_observer or PowerOfTwoPerChannelObserver).with_args(
        bits=bits.weight, clip=weight_clip, reservoir_size=None, signed=True, ch_axis=0
    )
    activation = (activation_observer or PowerOfTwoActivationObserver).with_args(
        bits=bits.activation, clip=clip, routing=bits.routing
    )
    return QConfig(activation, weight)


def quantized_module_types() -> tuple[type[torch.nn.Module], ...]:
    """Module types the plugin quantizes (each has an observed and a quantized custom class)."""
    from capsnet_nncf_plugin.fx.custom_modules import FLOAT_TO_OBSERVED

    return tuple(FLOAT_TO_OBSERVED)


def get_capsnet_qconfig_mapping(
    weight_bits: int = 8,
    activation_bits: int = 8,
    routing_bits: int | RoutingBits = 8,
    clip: str = "hardware",
    allocation: Any = None,
    weight_clip: WeightClip = "mse",
    weight_observer: type | None = None,
    activation_observer: type | None = None,
) -> QConfigMapping:
    """A ``QConfigMapping`` with power-of-two qconfigs for every quantizable capsule-network module.

    ``allocation`` (a ``BitAllocation`` or a mapping ``module name -> LayerBits``/dict) overrides the uniform
    bits per module name. Every other op stays float: it sits between quantized modules, which carry the
    quantization points. ``weight_clip``: a clipping mode, or a function of each layer's weight bit-width
    returning one. ``weight_observer``/``activation_observer``: observer classes (see ``make_qconfig``).
    """
    routing = routing_bits if isinstance(routing_bits, RoutingBits) else RoutingBits.from_dict(routing_bits)
    observers = {"weight_observer": weight_observer, "activation_observer": activation_observer}
    default = make_qconfig(LayerBits(weight_bits, activation_bits, routing), clip, weight_clip, **observers)
    mapping = QConfigMapping().set_global(None)
    # ReLU shares the convolution's qconfig object: torch.ao fuses Conv2d + ReLU into ConvReLU2d only then,
    # and the fused layer quantizes its output once, unsigned, after the ReLU.
    for module_type in (*quantized_module_types(), torch.nn.ReLU):
        mapping.set_object_type(module_type, default)
    for name, layer in _layer_bits_by_name(allocation).items():
        mapping.set_module_name(name, make_qconfig(layer, clip, weight_clip, **observers))
    return mapping


def _layer_bits_by_name(allocation: Any) -> dict[str, LayerBits]:
    if allocation is None:
        return {}
    layers = getattr(allocation, "layers", allocation)
    if not isinstance(layers, Mapping):
        raise ValueError(
            "allocation must be a BitAllocation or a mapping of module names to bits, "
            f"got {type(allocation).__name__}"
        )
    result = {}
    for name, bits in layers.items():
        if isinstance(bits, LayerBits):
            result[name] = bits
        elif isinstance(bits, Mapping):
            routing = bits.get("routing", 8)
            result[name] = LayerBits(
                weight=int(bits.get("weight", 8)),
                activation=int(bits.get("activation", 8)),
                routing=routing if isinstance(routing, RoutingBits) else RoutingBits.from_dict(routing),
            )
        else:
            raise ValueError(f"allocation entry {name!r} must be LayerBits or a dict, got {bits!r}")
    return result
