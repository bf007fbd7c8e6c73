"""Observed custom modules: the calibration form of every layer the FX flow quantizes.

torch.ao's own convert quantizes activations with ``torch.quantize_per_tensor``, which knows no bit-width
below 8, and lowers layers to 8-bit kernels. The plugin therefore registers every layer it quantizes as a
*custom module*: ``prepare_fx`` swaps it for an observed module here (its internal tensors observed during
calibration), and ``convert_fx`` hands it its output observer and calls the quantized class's
``from_observed``, which asks the observed module to freeze itself (:meth:`ObservedModule.to_quantized`)
into the integer model's module (:mod:`capsnet_nncf_plugin.quantized.modules`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.ao.nn.intrinsic import ConvReLU2d, _FusedModule
from torch.ao.quantization import QConfig

from capsnet_nncf_plugin.core.bit_widths import RoutingBits
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.errors import CalibrationError
from capsnet_nncf_plugin.fx.module_reuse import active_module_reuse
from capsnet_nncf_plugin.nn import ClassCapsules, ConvCaps3d, DynamicRouting, Squash
from capsnet_nncf_plugin.observers import FixedRangeObserver, PowerOfTwoObserver, freeze
from capsnet_nncf_plugin.ops import RoutingQuantization
from capsnet_nncf_plugin.quantized.layer_kinds import LAYER_KINDS, PLAIN, ROUTING, SQUASH, routing_of
from capsnet_nncf_plugin.quantized.layer_kinds import weighted_layer as float_weighted_layer
from capsnet_nncf_plugin.quantized.modules import (
    QuantizedLayer,
    QuantizedModule,
    QuantizedRoutingLayer,
    QuantizedSquashLayer,
    integer_op_format,
    squash_output_format,
)


def _per_sample(tensor: torch.Tensor, batch: int) -> int:
    return tensor.numel() // max(batch, 1)


class ObservedModule(nn.Module):
    """Calibration form: runs the float layer and observes its internal tensors."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer
        self.qconfig = layer.qconfig
        self.elements: dict[str, int] = {}
        # The width of the format this layer reads; None: its own activation bits (see input_formats.py).
        self.input_bits: int | None = None
        # Integer codes of the weight chosen at calibration (GPTQ, gptq_rounding.py); None: round to nearest.
        self.weight_codes: torch.Tensor | None = None
        # The module's name in the model, set where converted modules are reused (module_reuse.py).
        self.reuse_name: str | None = None

    @classmethod
    def from_float(cls, layer: nn.Module) -> ObservedModule:
        return cls(layer)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        output = self.layer(tensor)
        self.record("input", tensor, tensor)
        self.record("output", output, tensor)
        return output

    def record(self, point: str, tensor: torch.Tensor, layer_input: torch.Tensor) -> None:
        """Remember the elements per sample of an internal tensor (for memory accounting)."""
        self.elements.setdefault(point, _per_sample(tensor, layer_input.shape[0]))

    def activation_bits(self) -> int:
        return self.qconfig.activation().bits

    def float_layer(self) -> nn.Module:
        """The layer whose quantized form this module builds (a fused Conv+ReLU's convolution)."""
        return self.layer[0] if isinstance(self.layer, _FusedModule) else self.layer

    def weighted_layer(self) -> nn.Module | None:
        """The float layer whose weight this module quantizes (a convolution, linear or vote transform)."""
        return float_weighted_layer(self.float_layer())

    def weight_quantizer(self) -> PowerOfTwoQuantizer | None:
        """The weight's format, decided by the qconfig's weight observer on the float weight: what the
        quantized module, bias correction and GPTQ all round to."""
        layer = self.weighted_layer()
        if layer is None:
            return None
        reuse = active_module_reuse()
        factory = getattr(self.qconfig.weight, "p", None)  # with_args' partial: the observer and its settings
        if reuse is None or self.reuse_name is None or factory is None:
            return self._observe_weight(layer)
        callable_arguments = getattr(self.qconfig.weight, "callable_args", {})  # with_callable_args'
        settings = (factory.func, factory.args, factory.keywords, callable_arguments)
        return reuse.get(f"{self.reuse_name} weight format", settings, lambda: self._observe_weight(layer))

    def _observe_weight(self, layer: nn.Module) -> PowerOfTwoQuantizer:
        observer = self.qconfig.weight()
        observer.name = f"{type(layer).__name__} weight"
        observer(layer.weight.detach())
        return freeze(observer)

    def signed_activation_observer(self, name: str) -> PowerOfTwoObserver:
        """An observer of an internal signed tensor (votes, pre-squash): the qconfig's bits and clipping."""
        template = self.qconfig.activation()
        return PowerOfTwoObserver(bits=template.bits, signed=True, clip=template.clip, name=name)

    def _input_bits(self) -> int:
        return self.input_bits or self.activation_bits()

    def _output_format(self) -> PowerOfTwoQuantizer:
        observer = getattr(self, "activation_post_process", None)
        if observer is None:
            raise CalibrationError(
                "convert_fx gave the module no output observer; prepare it with the plugin's configs"
            )
        return freeze(observer)

    def to_quantized(self) -> QuantizedModule:
        """Freeze the calibrated observers into the integer model's module; inside an active
        :class:`~capsnet_nncf_plugin.fx.module_reuse.ModuleReuse`, the module built before for the same
        name and arguments (``SharedCalibration(share_modules=True)`` names the modules it converts)."""
        constructor, layer, arguments = self.quantized_form()
        reuse = active_module_reuse()
        if reuse is None or self.reuse_name is None:
            return constructor(layer, *arguments)
        return reuse.get(self.reuse_name, (constructor, arguments), lambda: constructor(layer, *arguments))

    def quantized_form(self) -> tuple[type[QuantizedModule], nn.Module, tuple]:
        """The quantized module's class, the float layer it is built from and its other arguments."""
        raise NotImplementedError


class ObservedLayer(ObservedModule):
    """Observed form of a layer with one weight (or none) and one output."""

    def quantized_form(self) -> tuple[type[QuantizedLayer], nn.Module, tuple]:
        arguments = (
            self._output_format(),
            self._input_bits(),
            self.elements,
            self.weight_quantizer(),
            self.weight_codes,
            isinstance(self.layer, ConvReLU2d),
        )
        return QuantizedLayer, self.float_layer(), arguments


class ObservedSquashLayer(ObservedModule):
    """Observed form of Squash, PrimaryCapsules and ConvCaps2d: also observes the pre-activation."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)
        self.pre_observer = self.signed_activation_observer("pre_squash")

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        pre = tensor if isinstance(self.layer, Squash) else self.layer.poses(tensor)
        self.pre_observer(pre)
        output = self.layer.squash(pre) if not isinstance(self.layer, Squash) else self.layer(pre)
        for point, value in (("input", tensor), ("pre_squash", pre), ("output", output)):
            self.record(point, value, tensor)
        return output

    def quantized_form(self) -> tuple[type[QuantizedSquashLayer], nn.Module, tuple]:
        arguments = (
            integer_op_format(freeze(self.pre_observer)),
            squash_output_format(self._output_format()),
            self._input_bits(),
            self.elements,
            self.weight_quantizer(),
            self.weight_codes,
        )
        return QuantizedSquashLayer, self.layer, arguments


class RoutingObservers(nn.Module):
    """Observers of the routing tensors: b (iterations >= 1) and s per iteration; c and v are fixed."""

    def __init__(self, iterations: int, routing: RoutingBits | None) -> None:
        super().__init__()
        routing = routing or RoutingBits()
        self.iterations = iterations
        self.logit_bits = routing.per_iteration("logits", iterations - 1)
        self.coupling_bits = routing.per_iteration("coupling", iterations)
        self.pre_bits = routing.per_iteration("pre_activation", iterations)
        self.out_bits = routing.per_iteration("output", iterations)
        self.logits = nn.ModuleList(
            PowerOfTwoObserver(bits=bits, signed=True, clip="minmax", name=f"b[{index + 1}]")
            for index, bits in enumerate(self.logit_bits)
        )
        self.pre = nn.ModuleList(
            PowerOfTwoObserver(bits=bits, signed=True, clip="minmax", name=f"s[{index}]")
            for index, bits in enumerate(self.pre_bits)
        )
        self.coupling = nn.ModuleList(
            FixedRangeObserver(bits=bits, signed=False, max_abs=1.0, name=f"c[{index}]")
            for index, bits in enumerate(self.coupling_bits)
        )
        self.elements: dict[str, int] = {}

    def observe(self, tensor_name: str, iteration: int, tensor: torch.Tensor) -> None:
        """The callback ``DynamicRouting.route`` calls with each routing tensor."""
        if tensor_name == "b":
            self.logits[iteration - 1](tensor)
        elif tensor_name == "s":
            self.pre[iteration](tensor)
        elif tensor_name == "c":
            self.coupling[iteration](tensor)
        self.elements.setdefault(f"{tensor_name}[{iteration}]", tensor[0].numel() if tensor.dim() else 1)

    def freeze(self, votes: PowerOfTwoQuantizer) -> RoutingQuantization:
        return RoutingQuantization(
            iterations=self.iterations,
            votes_exponent=votes.exponent,
            votes_bits=votes.bits,
            coupling_bits=self.coupling_bits,
            pre_exponents=tuple(integer_op_format(freeze(o)).exponent for o in self.pre),
            pre_bits=self.pre_bits,
            out_bits=self.out_bits,
            logit_exponents=tuple(integer_op_format(freeze(o)).exponent for o in self.logits),
            logit_bits=self.logit_bits,
        )


class ObservedRoutingLayer(ObservedModule):
    """Observed form of DynamicRouting, ClassCapsules and ConvCaps3d: votes and routing tensors observed."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)
        routing_bits = self.qconfig.activation().routing
        self.routing_observers = RoutingObservers(routing_of(layer).iterations, routing_bits)
        self.votes_observer = self.signed_activation_observer("votes")

    def _votes(self, tensor: torch.Tensor) -> torch.Tensor:
        if isinstance(self.layer, DynamicRouting):
            return tensor
        if isinstance(self.layer, ClassCapsules):
            return self.layer.votes(tensor)
        return self.layer.routed_votes(tensor)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        votes = self._votes(tensor)
        self.votes_observer(votes)
        outputs = routing_of(self.layer).route(votes, observe=self.routing_observers.observe)
        self.record("input", tensor, tensor)
        self.record("votes", votes, tensor)
        self.elements.setdefault("rows", votes.shape[0] // max(tensor.shape[0], 1))
        if isinstance(self.layer, ConvCaps3d):
            return self.layer.unfold_positions(outputs, tensor)
        return outputs

    def quantized_form(self) -> tuple[type[QuantizedRoutingLayer], nn.Module, tuple]:
        votes = integer_op_format(freeze(self.votes_observer))
        arguments = (
            votes,
            self.routing_observers.freeze(votes),
            self.routing_observers.elements,
            self._input_bits(),
            self.elements,
            self.weight_quantizer(),
            self.weight_codes,
        )
        return QuantizedRoutingLayer, self.layer, arguments


# --- the mappings ---------------------------------------------------------------------------------

_OBSERVED_OF_KIND: dict[str, type[ObservedModule]] = {
    PLAIN: ObservedLayer,
    SQUASH: ObservedSquashLayer,
    ROUTING: ObservedRoutingLayer,
}

#: Every float layer the integer model has a form for, and torch.ao's fused Conv+ReLU.
FLOAT_TO_OBSERVED: dict[type[nn.Module], type[ObservedModule]] = {
    **{layer_type: _OBSERVED_OF_KIND[kind] for layer_type, kind in LAYER_KINDS.items()},
    ConvReLU2d: ObservedLayer,
}

OBSERVED_TO_QUANTIZED: dict[type[ObservedModule], type[QuantizedModule]] = {
    ObservedLayer: QuantizedLayer,
    ObservedSquashLayer: QuantizedSquashLayer,
    ObservedRoutingLayer: QuantizedRoutingLayer,
}


def observe(layer: nn.Module, qconfig: QConfig, fused_relu: bool = False) -> ObservedModule:
    """The observed form of a copy of ``layer`` with ``qconfig``, as ``prepare_fx`` builds it (fused with a
    following ReLU if ``fused_relu``), its output observer attached: for calibrating one layer outside a
    traced model (the error analysis)."""
    float_layer = ConvReLU2d(copy.deepcopy(layer), nn.ReLU()) if fused_relu else copy.deepcopy(layer)
    float_layer.qconfig = qconfig
    observed = FLOAT_TO_OBSERVED[type(float_layer)].from_float(float_layer)
    observed.activation_post_process = qconfig.activation()
    return observed


def to_quantized(observed: ObservedModule) -> QuantizedModule:
    """Convert one calibrated observed module as ``convert_fx`` does (through the convert custom config)."""
    return OBSERVED_TO_QUANTIZED[type(observed)].from_observed(observed)
