"""Observed and quantized custom modules: where the quantization points of an FX-quantized model live.

torch.ao's own convert quantizes activations with ``torch.quantize_per_tensor``, which knows no bit-width
below 8, and lowers layers to 8-bit kernels. The plugin therefore registers every layer it quantizes as a
*custom module*: ``prepare_fx`` swaps it for an observed module (calibration) and ``convert_fx`` for a
quantized one, which hands its output observer to it. A quantized module

* takes its input either from another quantized module (float values already on its grid) or from a
  ``torch.quantize_per_tensor`` that torch inserted (then it re-applies its own, possibly narrower, range);
* computes with power-of-two weights of any bit-width (2..16), and runs squash and dynamic routing in the
  integer arithmetic of :mod:`capsnet_nncf_plugin.ops`;
* returns float values on its output grid, so the next module reads them exactly.

Every point is a :class:`~capsnet_nncf_plugin.observers.quantizer.PowerOfTwoQuantizer`;
``quantization_points`` lists them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.ao.nn.intrinsic import ConvReLU2d, _FusedModule

from capsnet_nncf_plugin.fx.qconfig import RoutingBits
from capsnet_nncf_plugin.fx.quantized_tensors import narrow_input
from capsnet_nncf_plugin.fx.weight_layers import QuantizedWeights, integer_weight_layer
from capsnet_nncf_plugin.nn import (
    ClassCapsules,
    ConvCaps2d,
    ConvCaps3d,
    DynamicRouting,
    PrimaryCapsules,
    Squash,
    VoteTransform,
)
from capsnet_nncf_plugin.observers import (
    CalibrationError,
    FixedRangeObserver,
    PowerOfTwoObserver,
    coupling_coefficient_exponent,
    dequantize,
    squash_output_exponent,
)
from capsnet_nncf_plugin.observers.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.ops import RoutingQuantization, int_dynamic_routing, int_squash
from capsnet_nncf_plugin.ops.operands import MAX_OP_EXPONENT, MIN_OP_EXPONENT


@dataclass(frozen=True)
class QuantizationPoint:
    """One quantized tensor of a model: what ``quantization_points`` reports."""

    name: str
    kind: str  # "weight", "activation" or "routing"
    bits: int
    signed: bool
    exponent: int | tuple[int, ...]
    elements_per_sample: int  # for weights: the number of parameters


def integer_op_quantizer(observer: PowerOfTwoObserver) -> PowerOfTwoQuantizer:
    """Freeze an observer feeding an integer capsule op, its exponent kept inside the op's proven range.

    Raising a tiny exponent to the op's minimum only coarsens values far below anything that changes a
    squash or a softmax; lowering a huge one clips values that would overflow the op's int64 arithmetic.
    """
    quantizer = PowerOfTwoQuantizer.from_observer(observer)
    exponent = min(max(quantizer.exponent, MIN_OP_EXPONENT), MAX_OP_EXPONENT)
    return PowerOfTwoQuantizer(quantizer.bits, quantizer.signed, exponent)


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

    def weighted_layer(self) -> nn.Module | None:
        """The float layer whose weight this module quantizes (a convolution, linear or vote transform)."""
        return None

    def signed_activation_observer(self, name: str) -> PowerOfTwoObserver:
        """An observer of an internal signed tensor (votes, pre-squash): the qconfig's bits and clipping."""
        template = self.qconfig.activation()
        return PowerOfTwoObserver(bits=template.bits, signed=True, clip=template.clip, name=name)


class QuantizedModule(nn.Module):
    """Inference form: integer weights, power-of-two activations, integer capsule ops."""

    def __init__(self, observed: ObservedModule) -> None:
        super().__init__()
        self.input_bits = observed.input_bits or observed.activation_bits()
        self.elements = dict(observed.elements)

    @classmethod
    def from_observed(cls, observed: ObservedModule) -> QuantizedModule:
        return cls(observed)

    def _input(self, tensor: torch.Tensor) -> torch.Tensor:
        """The input in this module's format: a quantized tensor (or float when run on float values)."""
        return narrow_input(tensor, self.input_bits)

    def points(self, name: str) -> list[QuantizationPoint]:
        """This module's quantization points, named under ``name``."""
        raise NotImplementedError


def _output_observer(observed: ObservedModule) -> PowerOfTwoObserver:
    observer = getattr(observed, "activation_post_process", None)
    if observer is None:
        raise CalibrationError(
            "convert_fx gave the module no output observer; prepare it with the plugin's configs"
        )
    return observer


def _output_quantizer(observed: ObservedModule) -> PowerOfTwoQuantizer:
    return PowerOfTwoQuantizer.from_observer(_output_observer(observed))


def _weight_point(weights: QuantizedWeights, name: str) -> QuantizationPoint:
    quantizer = weights.quantizer
    return QuantizationPoint(name, "weight", quantizer.bits, True, quantizer.exponent, weights.codes.numel())


def _activation_point(name: str, quantizer: PowerOfTwoQuantizer, elements: int) -> QuantizationPoint:
    return QuantizationPoint(
        name, "activation", quantizer.bits, quantizer.signed, quantizer.exponent, elements
    )


# --- plain layers: Conv2d, ConvReLU2d, Conv3d, Linear, BatchNorm2d -----------------------------------------


class ObservedLayer(ObservedModule):
    """Observed form of a layer with one weight (or none) and one output."""

    def weighted_layer(self) -> nn.Module | None:
        # A fused Conv+ReLU is a sequence whose first member holds the weight.
        layer = self.layer[0] if isinstance(self.layer, _FusedModule) else self.layer
        return None if isinstance(layer, nn.BatchNorm2d) else layer


class QuantizedLayer(QuantizedModule):
    """A layer run on grid values with power-of-two integer weights; output on its grid."""

    def __init__(self, observed: ObservedModule) -> None:
        super().__init__(observed)
        layer = observed.layer
        weighted = observed.weighted_layer()
        self.relu = isinstance(layer, ConvReLU2d)
        self.weighted: nn.Module | None = None
        if isinstance(layer, nn.BatchNorm2d):
            # Eval-mode batch norm as one per-channel multiply and add in float32: the two roundings every
            # backend reproduces (a fused formula would round differently). 256 of DeepCaps' parameters.
            scale = layer.weight.detach() / torch.sqrt(layer.running_var + layer.eps)
            self.register_buffer("bn_scale", scale.float())
            self.register_buffer("bn_shift", (layer.bias.detach() - layer.running_mean * scale).float())
        elif isinstance(getattr(weighted, "weight", None), torch.Tensor):
            self.weighted = integer_weight_layer(
                weighted, observed.qconfig.weight(), "weight", observed.weight_codes
            )
        else:
            raise TypeError(f"no quantized form for {type(layer).__name__}")
        self.output_quantizer = _output_quantizer(observed)

    @property
    def weights(self) -> QuantizedWeights | None:
        return None if self.weighted is None else self.weighted.weights

    def compute(self, tensor: torch.Tensor) -> torch.Tensor:
        """The layer's float result (before output quantization) on an input in this module's format."""
        if self.weighted is None:
            values = tensor.dequantize() if tensor.is_quantized else tensor
            shape = (1, -1) + (1,) * (values.dim() - 2)
            return values * self.bn_scale.view(shape) + self.bn_shift.view(shape)
        result = self.weighted(tensor)
        return torch.relu(result) if self.relu else result

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.output_quantizer.to_quantized_tensor(self.compute(self._input(tensor)))

    def points(self, name: str) -> list[QuantizationPoint]:
        points = [] if self.weights is None else [_weight_point(self.weights, f"{name}.weight")]
        return [*points, _activation_point(f"{name}.output", self.output_quantizer, self.elements["output"])]


# --- squash ---------------------------------------------------------------------------------------


def _squash_output_quantizer(bits: int) -> PowerOfTwoQuantizer:
    return PowerOfTwoQuantizer(bits, True, squash_output_exponent(bits))


#: Squash computes at this width, then rounds to the output format: capsules whose components stay well
#: below 1 (primary capsules) get a finer exponent than the full (-1, 1) range would allow.
WIDE_SQUASH_BITS = 16


def squash_output_quantizer(observer: PowerOfTwoObserver) -> PowerOfTwoQuantizer:
    """Signed output format of a squash from its calibrated output observer (at most the full (-1, 1))."""
    observed = PowerOfTwoQuantizer.from_observer(observer)
    # An observer that saw no negative value chose an unsigned exponent; the signed format needs one more.
    exponent = observed.exponent if observed.signed else observed.exponent + 1
    lowest = squash_output_exponent(WIDE_SQUASH_BITS)
    exponent = min(max(exponent, lowest), squash_output_exponent(observed.bits))
    return PowerOfTwoQuantizer(observed.bits, True, exponent)


def integer_squash(pre: torch.Tensor, pre_quantizer: PowerOfTwoQuantizer, dim: int) -> torch.Tensor:
    """Integer squash of the pre-activation codes at 16 bits, as float values on that grid.

    The rounding to the layer's output format is the caller's ``to_quantized_tensor``: a dequantize/quantize
    pair (half to even), the QDQ form the ONNX export emits.
    """
    wide = int_squash(pre_quantizer.quantize(pre), pre_quantizer.exponent, WIDE_SQUASH_BITS, dim)
    return dequantize(wide.to(torch.float32), squash_output_exponent(WIDE_SQUASH_BITS))


class ObservedSquashLayer(ObservedModule):
    """Observed form of Squash, PrimaryCapsules and ConvCaps2d: also observes the pre-activation."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)
        self.pre_observer = self.signed_activation_observer("pre_squash")

    def weighted_layer(self) -> nn.Module | None:
        return None if isinstance(self.layer, Squash) else self.layer.conv

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        pre = tensor if isinstance(self.layer, Squash) else self.layer.poses(tensor)
        self.pre_observer(pre)
        output = self.layer.squash(pre) if not isinstance(self.layer, Squash) else self.layer(pre)
        for point, value in (("input", tensor), ("pre_squash", pre), ("output", output)):
            self.record(point, value, tensor)
        return output


class QuantizedSquashLayer(QuantizedModule):
    """Poses from power-of-two weights, then integer squash to the output bit-width."""

    def __init__(self, observed: ObservedSquashLayer) -> None:
        super().__init__(observed)
        self.pre_quantizer = integer_op_quantizer(observed.pre_observer)
        self.output_quantizer = squash_output_quantizer(_output_observer(observed))
        layer = observed.layer
        self.dim = layer.dim if isinstance(layer, Squash) else layer.squash.dim
        self.weights: QuantizedWeights | None = None
        if isinstance(layer, Squash):
            self.layer = None
        else:
            self.layer = copy.deepcopy(layer)
            self.layer.conv = integer_weight_layer(
                observed.weighted_layer(), observed.qconfig.weight(), "conv.weight", observed.weight_codes
            )
            self.weights = self.layer.conv.weights

    def pre_activation(self, tensor: torch.Tensor) -> torch.Tensor:
        """Float poses before squash, from an input in this module's format."""
        if self.layer is None:
            return tensor.dequantize() if tensor.is_quantized else tensor
        return self.layer.poses(tensor)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        pre = self.pre_activation(self._input(tensor))
        squashed = integer_squash(pre, self.pre_quantizer, self.dim)
        return self.output_quantizer.to_quantized_tensor(squashed)

    def points(self, name: str) -> list[QuantizationPoint]:
        points = [] if self.weights is None else [_weight_point(self.weights, f"{name}.conv.weight")]
        return [
            *points,
            _activation_point(f"{name}.pre_squash", self.pre_quantizer, self.elements["pre_squash"]),
            _activation_point(f"{name}.output", self.output_quantizer, self.elements["output"]),
        ]


# --- dynamic routing ------------------------------------------------------------------------------


class RoutingObservers(nn.Module):
    """Observers of the routing tensors: b (iterations >= 1) and s per iteration; c and v are fixed."""

    def __init__(self, iterations: int, qconfig: torch.ao.quantization.QConfig) -> None:
        super().__init__()
        routing = qconfig.activation().routing or RoutingBits()
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
            pre_exponents=tuple(integer_op_quantizer(o).exponent for o in self.pre),
            pre_bits=self.pre_bits,
            out_bits=self.out_bits,
            logit_exponents=tuple(integer_op_quantizer(o).exponent for o in self.logits),
            logit_bits=self.logit_bits,
        )


def routing_points(
    name: str, params: RoutingQuantization, elements: dict[str, int], rows: int
) -> list[QuantizationPoint]:
    """The per-iteration routing tensors as quantization points (``rows`` routings per sample)."""
    points = []
    for t in range(params.iterations):
        if t > 0:
            points.append(
                QuantizationPoint(
                    f"{name}.b[{t}]",
                    "routing",
                    params.logit_bits[t - 1],
                    True,
                    params.logit_exponents[t - 1],
                    elements[f"b[{t}]"] * rows,
                )
            )
        points.append(
            QuantizationPoint(
                f"{name}.c[{t}]",
                "routing",
                params.coupling_bits[t],
                False,
                coupling_coefficient_exponent(params.coupling_bits[t]),
                elements[f"c[{t}]"] * rows,
            )
        )
        points.append(
            QuantizationPoint(
                f"{name}.s[{t}]",
                "routing",
                params.pre_bits[t],
                True,
                params.pre_exponents[t],
                elements[f"s[{t}]"] * rows,
            )
        )
        points.append(
            QuantizationPoint(
                f"{name}.v[{t}]",
                "routing",
                params.out_bits[t],
                True,
                squash_output_exponent(params.out_bits[t]),
                elements[f"v[{t}]"] * rows,
            )
        )
    return points


class ObservedRoutingLayer(ObservedModule):
    """Observed form of DynamicRouting, ClassCapsules and ConvCaps3d: votes and routing tensors observed."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)
        routing = layer if isinstance(layer, DynamicRouting) else layer.routing
        self.routing_observers = RoutingObservers(routing.iterations, self.qconfig)
        self.votes_observer = self.signed_activation_observer("votes")

    def weighted_layer(self) -> nn.Module | None:
        return None if isinstance(self.layer, DynamicRouting) else self.layer.votes

    def _votes(self, tensor: torch.Tensor) -> torch.Tensor:
        if isinstance(self.layer, DynamicRouting):
            return tensor
        if isinstance(self.layer, ClassCapsules):
            return self.layer.votes(tensor)
        return self.layer.routed_votes(tensor)

    def _finish(self, outputs: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
        return self.layer.unfold_positions(outputs, tensor) if isinstance(self.layer, ConvCaps3d) else outputs

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        votes = self._votes(tensor)
        self.votes_observer(votes)
        routing = self.layer if isinstance(self.layer, DynamicRouting) else self.layer.routing
        outputs = routing.route(votes, observe=self.routing_observers.observe)
        self.record("input", tensor, tensor)
        self.record("votes", votes, tensor)
        self.elements.setdefault("rows", votes.shape[0] // max(tensor.shape[0], 1))
        return self._finish(outputs, tensor)


class QuantizedRoutingLayer(QuantizedModule):
    """Votes from power-of-two weights, quantized; integer dynamic routing; capsules on the squash grid."""

    def __init__(self, observed: ObservedRoutingLayer) -> None:
        super().__init__(observed)
        layer = observed.layer
        self.votes_quantizer = integer_op_quantizer(observed.votes_observer)
        self.routing = observed.routing_observers.freeze(self.votes_quantizer)
        self.routing_elements = dict(observed.routing_observers.elements)
        self.output_quantizer = _squash_output_quantizer(self.routing.output_bits)
        self.weights: QuantizedWeights | None = None
        if isinstance(layer, DynamicRouting):
            self.layer = None
        else:
            self.layer = copy.deepcopy(layer)
            self.layer.votes = integer_weight_layer(
                observed.weighted_layer(), observed.qconfig.weight(), "votes.weight", observed.weight_codes
            )
            self.weights = self.layer.votes.weights

    def votes(self, tensor: torch.Tensor) -> torch.Tensor:
        """Float votes ``[rows, I, J, D]`` from an input in this module's format."""
        if self.layer is None:
            return tensor.dequantize() if tensor.is_quantized else tensor
        if isinstance(self.layer, ClassCapsules):
            return self.layer.votes(tensor)
        return self.layer.routed_votes(tensor)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        narrowed = self._input(tensor)
        codes = self.votes_quantizer.quantize(self.votes(narrowed)).to(torch.int32)
        routed = int_dynamic_routing(codes, self.routing)
        outputs = dequantize(routed.to(torch.float32), self.routing.output_exponent)
        if isinstance(self.layer, ConvCaps3d):
            outputs = self.layer.unfold_positions(outputs, narrowed)
        return self.output_quantizer.to_quantized_tensor(outputs)

    def points(self, name: str) -> list[QuantizationPoint]:
        points = [] if self.weights is None else [_weight_point(self.weights, f"{name}.votes.weight")]
        points.append(_activation_point(f"{name}.votes", self.votes_quantizer, self.elements["votes"]))
        return points + routing_points(name, self.routing, self.routing_elements, self.elements["rows"])


# --- the mappings ---------------------------------------------------------------------------------

FLOAT_TO_OBSERVED: dict[type[nn.Module], type[ObservedModule]] = {
    nn.Conv2d: ObservedLayer,
    ConvReLU2d: ObservedLayer,
    nn.Conv3d: ObservedLayer,
    nn.Linear: ObservedLayer,
    nn.BatchNorm2d: ObservedLayer,
    VoteTransform: ObservedLayer,
    Squash: ObservedSquashLayer,
    PrimaryCapsules: ObservedSquashLayer,
    ConvCaps2d: ObservedSquashLayer,
    DynamicRouting: ObservedRoutingLayer,
    ClassCapsules: ObservedRoutingLayer,
    ConvCaps3d: ObservedRoutingLayer,
}

OBSERVED_TO_QUANTIZED: dict[type[ObservedModule], type[QuantizedModule]] = {
    ObservedLayer: QuantizedLayer,
    ObservedSquashLayer: QuantizedSquashLayer,
    ObservedRoutingLayer: QuantizedRoutingLayer,
}
