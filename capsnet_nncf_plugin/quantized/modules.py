"""The quantized modules: the integer model every flow produces and export, allocation and runtime consume.

A quantized module is built from a float capsule layer and its frozen formats
(:class:`~capsnet_nncf_plugin.core.quantizer.PowerOfTwoQuantizer`), whoever calibrated them: the FX flow's
observed modules, the NNCF adapter (through the FX flow's observers) or a unit test. It

* reads its input as a torch quantized tensor (:mod:`.carrier`) and re-applies its own, possibly
  narrower, width (``input_bits``);
* computes with power-of-two integer weights of any width (:mod:`.weights`), and runs squash and
  dynamic routing in the integer arithmetic of :mod:`capsnet_nncf_plugin.ops`;
* returns its output as a quantized tensor on its output grid, so the next module reads it exactly.

``points(name)`` lists its quantization points (:mod:`.points`).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from capsnet_nncf_plugin.core.arithmetic import dequantize, quantize
from capsnet_nncf_plugin.core.fixed_ranges import squash_output_exponent
from capsnet_nncf_plugin.core.integer_format import carrier_encoding, quant_range
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.core.torch_types import TORCH_QUANTIZED_DTYPES
from capsnet_nncf_plugin.nn import ClassCapsules, ConvCaps3d, DynamicRouting, Squash
from capsnet_nncf_plugin.ops import RoutingQuantization, int_dynamic_routing, int_squash
from capsnet_nncf_plugin.ops.operands import MAX_OP_EXPONENT, MIN_OP_EXPONENT
from capsnet_nncf_plugin.quantized.carrier import as_float, narrow_input, to_carrier
from capsnet_nncf_plugin.quantized.points import (
    QuantizationPoint,
    activation_point,
    routing_points,
    weight_point,
)
from capsnet_nncf_plugin.quantized.weights import IntegerWeightLayer, QuantizedWeights, integer_weight_layer

#: Squash computes at this width, then rounds to the output format: capsules whose components stay well
#: below 1 (primary capsules) get a finer exponent than the full (-1, 1) range would allow.
WIDE_SQUASH_BITS = 16


@dataclass(frozen=True)
class CapsuleKernels:
    """The integer squash and dynamic routing the quantized modules call, with the signatures of
    :func:`~capsnet_nncf_plugin.ops.int_squash` and :func:`~capsnet_nncf_plugin.ops.int_dynamic_routing`.

    The torch reference of :mod:`capsnet_nncf_plugin.ops` by default: the definition of the arithmetic,
    which export and the runtime are checked against. An allocation search swaps in kernels computing the
    same integers faster (``allocation.native_kernels``) with :func:`capsule_kernels`.
    """

    squash: Callable[..., torch.Tensor] = int_squash
    routing: Callable[..., torch.Tensor] = int_dynamic_routing


REFERENCE_KERNELS = CapsuleKernels()
_active_kernels: list[CapsuleKernels] = [REFERENCE_KERNELS]


@contextlib.contextmanager
def capsule_kernels(kernels: CapsuleKernels) -> Iterator[CapsuleKernels]:
    """Every quantized module runs squash and routing with ``kernels`` inside the ``with`` block."""
    _active_kernels.append(kernels)
    try:
        yield kernels
    finally:
        _active_kernels.pop()


def active_kernels() -> CapsuleKernels:
    """The kernels the quantized modules call now."""
    return _active_kernels[-1]


def fast_carrier(quantizer: PowerOfTwoQuantizer, tensor: torch.Tensor) -> torch.Tensor:
    """:func:`~capsnet_nncf_plugin.quantized.carrier.to_carrier`, bit for bit, in fewer passes.

    ``to_carrier`` fake-quantizes (round half to even, saturate) and hands the grid values to
    ``torch.quantize_per_tensor``. For a container without zero point, clamping to ``[qmin, qmax] * 2^e``
    and letting ``quantize_per_tensor`` round is the same (two passes instead of seven): it rounds
    ``x * 2^-e`` (exact for a power of two) half to even, and rounding commutes with clamping to integers.
    With a zero point (signed formats in uint8, unsigned 16 bits in int32) torch adds it before rounding,
    in float32, which rounds twice (``-62.500004 + 128`` becomes 65.5, then 66): the codes are rounded
    here first, in place. A float64 result (a layer whose sums needed float64, see
    ``quantized/weights.py``) is rounded in float64 first; its grid values (at most 16-bit codes) are exact
    in float32. Per-channel formats: ``to_carrier``.
    """
    if tensor.dtype == torch.float64 and quantizer.axis is None:
        tensor = quantizer.fake_quantize(tensor).float()
    if quantizer.axis is not None or tensor.dtype != torch.float32 or tensor.is_quantized:
        return to_carrier(quantizer, tensor)
    low, high = quant_range(quantizer.bits, quantizer.signed)
    scale = 2.0**quantizer.exponent
    encoding = carrier_encoding(quantizer.bits, quantizer.signed)
    if encoding.zero_point == 0:
        grid = tensor.clamp(low * scale, high * scale)
    else:
        grid = torch.round(tensor * (1.0 / scale)).clamp_(low, high).mul_(scale)
    return torch.quantize_per_tensor(
        grid, scale, encoding.zero_point, TORCH_QUANTIZED_DTYPES[encoding.container]
    )


def code_container(bits: int, signed: bool) -> torch.dtype:
    """The narrowest integer dtype the capsule ops read that holds every code of a format."""
    if bits <= 8 and signed:
        return torch.int8
    return torch.int16 if bits <= 15 or (signed and bits <= 16) else torch.int32


def integer_op_format(quantizer: PowerOfTwoQuantizer) -> PowerOfTwoQuantizer:
    """A format feeding an integer capsule op, its exponent kept inside the op's proven range.

    Raising a tiny exponent to the op's minimum only coarsens values far below anything that changes a
    squash or a softmax; lowering a huge one clips values that would overflow the op's int64 arithmetic.
    """
    exponent = min(max(quantizer.exponent, MIN_OP_EXPONENT), MAX_OP_EXPONENT)
    return PowerOfTwoQuantizer(quantizer.bits, quantizer.signed, exponent)


def squash_output_format(observed: PowerOfTwoQuantizer) -> PowerOfTwoQuantizer:
    """Signed output format of a squash from its calibrated output format (at most the full (-1, 1))."""
    # An observer that saw no negative value chose an unsigned exponent; the signed format needs one more.
    exponent = observed.exponent if observed.signed else observed.exponent + 1
    lowest = squash_output_exponent(WIDE_SQUASH_BITS)
    exponent = min(max(exponent, lowest), squash_output_exponent(observed.bits))
    return PowerOfTwoQuantizer(observed.bits, True, exponent)


def full_squash_format(bits: int) -> PowerOfTwoQuantizer:
    """The signed ``bits``-wide format of the whole squash range (-1, 1): routing's output capsules."""
    return PowerOfTwoQuantizer(bits, True, squash_output_exponent(bits))


def integer_squash(pre: torch.Tensor, pre_quantizer: PowerOfTwoQuantizer, dim: int) -> torch.Tensor:
    """Integer squash of the pre-activation codes at 16 bits, as float values on that grid.

    The rounding to the layer's output format is the caller's ``to_carrier``: a dequantize/quantize pair
    (half to even), the QDQ form the ONNX export emits.
    """
    # The narrowest container of the codes: a quarter (or an eighth) of the int64 traffic.
    codes = quantize(pre, pre_quantizer.exponent, pre_quantizer.bits, pre_quantizer.signed)
    codes = codes.to(code_container(pre_quantizer.bits, pre_quantizer.signed))
    wide = active_kernels().squash(codes, pre_quantizer.exponent, WIDE_SQUASH_BITS, dim)
    return dequantize(wide.to(torch.float32), squash_output_exponent(WIDE_SQUASH_BITS))


class QuantizedModule(nn.Module):
    """Inference form of a layer: integer weights, power-of-two activations, integer capsule ops.

    ``input_bits``: the width of the format it reads; ``elements``: elements per sample of its internal
    tensors (``input``, ``output``, ...), for memory accounting.
    """

    def __init__(self, input_bits: int, elements: dict[str, int]) -> None:
        super().__init__()
        self.input_bits = input_bits
        self.elements = dict(elements)

    @classmethod
    def from_observed(cls, observed: Any) -> QuantizedModule:
        """torch.ao's convert hook: the observed module (an adapter's) freezes itself into its quantized
        form (``observed.to_quantized()``); this package knows no observer."""
        quantized = observed.to_quantized()
        if not isinstance(quantized, cls):
            raise TypeError(
                f"{type(observed).__name__} converts to {type(quantized).__name__}, not {cls.__name__}"
            )
        return quantized

    def _input(self, tensor: torch.Tensor) -> torch.Tensor:
        """The input in this module's format: a quantized tensor (or float when run on float values)."""
        return narrow_input(tensor, self.input_bits)

    def points(self, name: str) -> list[QuantizationPoint]:
        """This module's quantization points, named under ``name``."""
        raise NotImplementedError


class QuantizedLayer(QuantizedModule):
    """Conv2d (optionally with its ReLU), Conv3d, Linear, VoteTransform or BatchNorm2d on grid values.

    ``weight``: the weight's format (``None`` for batch norm); ``weight_codes``: codes chosen at
    calibration (GPTQ's), else the weight rounded to nearest.
    """

    def __init__(
        self,
        layer: nn.Module,
        output_quantizer: PowerOfTwoQuantizer,
        input_bits: int,
        elements: dict[str, int],
        weight: PowerOfTwoQuantizer | None = None,
        weight_codes: torch.Tensor | None = None,
        relu: bool = False,
    ) -> None:
        super().__init__(input_bits, elements)
        self.relu = relu
        self.weighted: nn.Module | None = None
        if isinstance(layer, nn.BatchNorm2d):
            # Eval-mode batch norm as one per-channel multiply and add in float32: the two roundings every
            # backend reproduces (a fused formula would round differently). 256 of DeepCaps' parameters.
            scale = layer.weight.detach() / torch.sqrt(layer.running_var + layer.eps)
            self.register_buffer("bn_scale", scale.float())
            self.register_buffer("bn_shift", (layer.bias.detach() - layer.running_mean * scale).float())
        elif isinstance(getattr(layer, "weight", None), torch.Tensor) and weight is not None:
            self.weighted = integer_weight_layer(layer, weight, "weight", weight_codes)
        else:
            raise TypeError(
                f"no quantized form for {type(layer).__name__} (a weighted layer needs its format)"
            )
        self.output_quantizer = output_quantizer

    @property
    def weights(self) -> QuantizedWeights | None:
        return None if self.weighted is None else self.weighted.weights

    def compute(self, tensor: torch.Tensor) -> torch.Tensor:
        """The layer's float result (before output quantization) on an input in this module's format."""
        if self.weighted is None:
            values = as_float(tensor)
            shape = (1, -1) + (1,) * (values.dim() - 2)
            return values * self.bn_scale.view(shape) + self.bn_shift.view(shape)
        result = self.weighted(tensor)
        return torch.relu(result) if self.relu else result

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        narrowed = self._input(tensor)
        if isinstance(self.weighted, IntegerWeightLayer):
            # Where the int8 kernel runs, it also rounds onto the output grid: the same codes, one pass.
            fused = self.weighted.output_carrier(narrowed, self.output_quantizer, self.relu)
            if fused is not None:
                return fused
        return fast_carrier(self.output_quantizer, self.compute(narrowed))

    def points(self, name: str) -> list[QuantizationPoint]:
        points = [] if self.weights is None else [weight_point(self.weights, f"{name}.weight")]
        return [*points, activation_point(f"{name}.output", self.output_quantizer, self.elements["output"])]


class QuantizedSquashLayer(QuantizedModule):
    """Squash, PrimaryCapsules or ConvCaps2d: poses from power-of-two weights, then integer squash."""

    def __init__(
        self,
        layer: nn.Module,
        pre_quantizer: PowerOfTwoQuantizer,
        output_quantizer: PowerOfTwoQuantizer,
        input_bits: int,
        elements: dict[str, int],
        weight: PowerOfTwoQuantizer | None = None,
        weight_codes: torch.Tensor | None = None,
    ) -> None:
        super().__init__(input_bits, elements)
        self.pre_quantizer = pre_quantizer
        self.output_quantizer = output_quantizer
        self.dim = layer.dim if isinstance(layer, Squash) else layer.squash.dim
        self.weights: QuantizedWeights | None = None
        if isinstance(layer, Squash):
            self.layer = None
        else:
            self.layer = copy.deepcopy(layer)
            self.layer.conv = integer_weight_layer(layer.conv, weight, "conv.weight", weight_codes)
            self.weights = self.layer.conv.weights

    def pre_activation(self, tensor: torch.Tensor) -> torch.Tensor:
        """Float poses before squash, from an input in this module's format."""
        if self.layer is None:
            return as_float(tensor)
        return self.layer.poses(tensor)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        pre = self.pre_activation(self._input(tensor))
        return fast_carrier(self.output_quantizer, integer_squash(pre, self.pre_quantizer, self.dim))

    def points(self, name: str) -> list[QuantizationPoint]:
        points = [] if self.weights is None else [weight_point(self.weights, f"{name}.conv.weight")]
        return [
            *points,
            activation_point(f"{name}.pre_squash", self.pre_quantizer, self.elements["pre_squash"]),
            activation_point(f"{name}.output", self.output_quantizer, self.elements["output"]),
        ]


class QuantizedRoutingLayer(QuantizedModule):
    """DynamicRouting, ClassCapsules or ConvCaps3d: votes from power-of-two weights, quantized; integer
    dynamic routing; capsules on the squash grid.

    ``routing_elements``: elements per sample of each routing tensor (``b[1]``, ``c[0]``, ...) of one
    routing; ``elements["rows"]``: routings per sample (positions of a ConvCaps3d).
    """

    def __init__(
        self,
        layer: nn.Module,
        votes_quantizer: PowerOfTwoQuantizer,
        routing: RoutingQuantization,
        routing_elements: dict[str, int],
        input_bits: int,
        elements: dict[str, int],
        weight: PowerOfTwoQuantizer | None = None,
        weight_codes: torch.Tensor | None = None,
    ) -> None:
        super().__init__(input_bits, elements)
        self.votes_quantizer = votes_quantizer
        self.routing = routing
        self.routing_elements = dict(routing_elements)
        self.output_quantizer = full_squash_format(routing.output_bits)
        self.weights: QuantizedWeights | None = None
        if isinstance(layer, DynamicRouting):
            self.layer = None
        else:
            self.layer = copy.deepcopy(layer)
            self.layer.votes = integer_weight_layer(layer.votes, weight, "votes.weight", weight_codes)
            self.weights = self.layer.votes.weights

    def votes(self, tensor: torch.Tensor) -> torch.Tensor:
        """Float votes ``[rows, I, J, D]`` from an input in this module's format."""
        if self.layer is None:
            return as_float(tensor)
        if isinstance(self.layer, ClassCapsules):
            return self.layer.votes(tensor)
        return self.layer.routed_votes(tensor)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        narrowed = self._input(tensor)
        votes = self.votes_quantizer
        # The narrowest container of the codes: the routing reads them once per iteration.
        codes = quantize(self.votes(narrowed), votes.exponent, votes.bits, votes.signed)
        codes = codes.to(code_container(votes.bits, votes.signed))
        routed = active_kernels().routing(codes, self.routing)
        outputs = dequantize(routed.to(torch.float32), self.routing.output_exponent)
        if isinstance(self.layer, ConvCaps3d):
            outputs = self.layer.unfold_positions(outputs, narrowed)
        return fast_carrier(self.output_quantizer, outputs)

    def points(self, name: str) -> list[QuantizationPoint]:
        points = [] if self.weights is None else [weight_point(self.weights, f"{name}.votes.weight")]
        points.append(activation_point(f"{name}.votes", self.votes_quantizer, self.elements["votes"]))
        return points + routing_points(name, self.routing, self.routing_elements, self.elements["rows"])
