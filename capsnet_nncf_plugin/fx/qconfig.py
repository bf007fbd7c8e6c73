"""Capsule-aware QConfigs: power-of-two observers for weights and activations, bits for routing tensors.

A torch ``QConfig`` holds two observer constructors; routing needs more (b, c, s, v per iteration). torch.ao
rebuilds QConfig objects during prepare, keeping only the constructors, so a layer's :class:`RoutingBits`
travel inside its activation-observer constructor (``PowerOfTwoActivationObserver(routing=...)``), where the
plugin's observed routing modules read them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.ao.quantization import QConfig, QConfigMapping

from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.core.bit_widths import LayerBits, RoutingBits
from capsnet_nncf_plugin.core.clipping import check_clip_mode
from capsnet_nncf_plugin.core.integer_format import check_bits
from capsnet_nncf_plugin.fx.observed import FLOAT_TO_OBSERVED
from capsnet_nncf_plugin.observers import PowerOfTwoPerChannelObserver
from capsnet_nncf_plugin.observers.activation_observer import PowerOfTwoActivationObserver

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
    check_clip_mode(clip)
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
    return tuple(FLOAT_TO_OBSERVED)


def get_capsnet_qconfig_mapping(
    weight_bits: int = 8,
    activation_bits: int = 8,
    routing_bits: int | RoutingBits = 8,
    clip: str = "hardware",
    allocation: BitAllocation | Mapping[str, LayerBits | Mapping[str, Any]] | None = None,
    weight_clip: WeightClip = "mse",
    weight_observer: type | None = None,
    activation_observer: type | None = None,
) -> QConfigMapping:
    """A ``QConfigMapping`` with power-of-two qconfigs for every quantizable capsule-network module.

    ``allocation`` (a ``BitAllocation``, or a mapping ``module name -> LayerBits`` or its JSON dict)
    overrides the uniform bits per module name. Every other op stays float: it sits between quantized
    modules, which carry the quantization points. ``weight_clip``: a clipping mode, or a function of each
    layer's weight bit-width returning one. ``weight_observer``/``activation_observer``: observer classes
    (see ``make_qconfig``).
    """
    routing = RoutingBits.from_dict(routing_bits)
    observers = {"weight_observer": weight_observer, "activation_observer": activation_observer}
    default = make_qconfig(LayerBits(weight_bits, activation_bits, routing), clip, weight_clip, **observers)
    mapping = QConfigMapping().set_global(None)
    # ReLU shares the convolution's qconfig object: torch.ao fuses Conv2d + ReLU into ConvReLU2d only then,
    # and the fused layer quantizes its output once, unsigned, after the ReLU.
    for module_type in (*quantized_module_types(), torch.nn.ReLU):
        mapping.set_object_type(module_type, default)
    for name, layer in layer_bits(allocation).items():
        mapping.set_module_name(name, make_qconfig(layer, clip, weight_clip, **observers))
    return mapping


def layer_bits(
    allocation: BitAllocation | Mapping[str, LayerBits | Mapping[str, Any]] | None,
) -> dict[str, LayerBits]:
    """The bits per layer name of an allocation given as an object or a plain mapping (parsed strictly)."""
    if allocation is None:
        return {}
    if isinstance(allocation, BitAllocation):
        return dict(allocation.layers)
    if not isinstance(allocation, Mapping):
        raise ValueError(
            "allocation must be a BitAllocation or a mapping of module names to bits, "
            f"got {type(allocation).__name__}"
        )
    return dict(BitAllocation(dict(allocation)).layers)
