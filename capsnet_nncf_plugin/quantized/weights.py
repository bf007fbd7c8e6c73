"""Layers with power-of-two integer weights, as the quantized custom modules run them.

A convolution or linear layer computes on grid values with integer weights, so its accumulator is an
integer multiple of 2^(e_in + e_w[c]); its bias is rounded onto that grid (int32 codes), as an integer
kernel (onnxruntime's QLinearConv) adds it. Every sum is then exact in float32 as long as it stays below
2^24 accumulator steps, and the result does not depend on the kernel's summation order: the torch model,
onnxruntime's unfused QDQ graph and the ONNX export agree bit for bit.

That bound is checked on every call (:class:`AccumulatorBound`): no partial sum of an output element
exceeds ``max |input code| * sum |weight codes of its channel| + |bias code|`` steps, a sufficient bound
read from the input's container, and, when that allows more, from the largest input code present. Where it
does not hold, the sums are made exact another way, and the layer returns float64 values, which the output
quantization rounds once, as an integer kernel rounds its int32 accumulator:

* the input codes split in two, ``x = hi * 2^m + lo``, each part small enough for float32 (two float32
  passes, joined in float64): ShallowCaps' primary capsules (a 9x9x256 kernel, ``sum |w| = 5e5``) on 8-bit
  inputs take this path;
* otherwise float64, exact below 2^53 steps (16-bit inputs into a large layer).

The ONNX export computes the same sums (``export/forms.py``, ``ExportWeightLayer``), from the bound of the
input format rather than of each batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from capsnet_nncf_plugin.core.integer_format import carrier_encoding, quant_range
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.core.torch_types import TORCH_QUANTIZED_DTYPES
from capsnet_nncf_plugin.nn import VoteTransform
from capsnet_nncf_plugin.quantized.carrier import exponent_of_scale, values_and_exponent
from capsnet_nncf_plugin.quantized.int8_conv import Int8Conv2d

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: Integers below this magnitude, and sums of them that stay below it, are exact in float32.
FLOAT32_EXACT_STEPS = 1 << 24

#: How a layer's sums are computed exactly (:meth:`AccumulatorBound.plan`).
FLOAT32, SPLIT, FLOAT64 = "float32", "split", "float64"


class AccumulatorBound:
    """How a layer computes its sums of integer products exactly, from its weight codes.

    ``row_l1``: the sum of ``|weight code|`` each output element accumulates (per output channel of a
    convolution or linear layer, per vote of a vote transform), computed once from the codes. ``calls``
    counts the calls by plan.
    """

    def __init__(self, row_l1: torch.Tensor) -> None:
        self.largest_l1 = int(row_l1.max()) if row_l1.numel() else 0
        self.calls = {FLOAT32: 0, SPLIT: 0, FLOAT64: 0}

    def plan(self, tensor: torch.Tensor, bias_codes: torch.Tensor | None = None) -> tuple[str, int]:
        """``(plan, m)`` for a quantized input ``tensor``: :data:`FLOAT32` when every partial sum stays below
        2^24 steps; :data:`SPLIT` with the low part's bits ``m`` when the codes split in two parts that each
        do; else :data:`FLOAT64`."""
        bias = 0 if bias_codes is None or bias_codes.numel() == 0 else int(bias_codes.abs().max())
        plan = FLOAT32, 0
        if _largest_code_of_container(tensor) * self.largest_l1 + bias >= FLOAT32_EXACT_STEPS:
            plan = self.plan_for_codes(*_code_range(tensor), bias)
        self.calls[plan[0]] += 1
        return plan

    def plan_for_codes(self, smallest: int, largest: int, bias: int = 0) -> tuple[str, int]:
        """The plan for any input whose codes lie in ``[smallest, largest]``, with bias codes up to ``bias``
        in magnitude (the export fixes its plan from the input format, for every input it will see)."""
        if max(-smallest, largest) * self.largest_l1 + bias < FLOAT32_EXACT_STEPS:
            return FLOAT32, 0
        return self._split(smallest, largest)

    def part_bits(self) -> int:
        """The widest ``m`` for which any ``m``-bit unsigned part of the input codes sums exactly in float32
        (below 2^24 steps); 0 where not even one bit does."""
        return max(((FLOAT32_EXACT_STEPS - 1) // max(self.largest_l1, 1)).bit_length() - 1, 0)

    def parts(self, smallest: int, largest: int) -> int:
        """How many ``part_bits()``-bit parts ``x = sum_j part_j * 2^(j * m)`` (the top one signed) codes in
        ``[smallest, largest]`` need so that every part sums exactly in float32 (the bias added afterwards,
        in float64); 0 where no cut does."""
        low_bits = self.part_bits()
        if low_bits < 1:
            return 0
        parts = 1
        while (
            max(-(smallest >> (low_bits * (parts - 1))), largest >> (low_bits * (parts - 1)))
            * (self.largest_l1)
            >= FLOAT32_EXACT_STEPS
        ):
            parts += 1
        return max(parts, 2)

    def _split(self, smallest: int, largest: int) -> tuple[str, int]:
        """``x = hi * 2^m + lo`` with ``0 <= lo < 2^m``: the widest ``m`` for ``lo``, if ``hi`` fits too (the
        bias is added afterwards, in float64)."""
        if self.parts(smallest, largest) != 2:
            return FLOAT64, 0
        return SPLIT, self.part_bits()


def exact_sums(
    linear: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    tensor: torch.Tensor,
    weights: torch.Tensor,
    plan: tuple[str, int],
) -> torch.Tensor:
    """``linear(values, weights)`` without bias (a convolution, matrix product or einsum over the input
    values) on the quantized input ``tensor``, exactly, as float64, by a :data:`SPLIT` or :data:`FLOAT64`
    ``plan``."""
    kind, low_bits = plan
    if kind == FLOAT64:
        return linear(tensor.dequantize().double(), weights.double())
    codes = tensor.int_repr().to(torch.int32) - int(tensor.q_zero_point())
    # Each part times the weights is exact in float32; the weighted sum of the two is exact in float64.
    high = linear((codes >> low_bits).to(torch.float32), weights).double()
    low = linear((codes & ((1 << low_bits) - 1)).to(torch.float32), weights).double()
    return (high * 2.0**low_bits + low) * float(tensor.q_scale())


#: The integer range of each torch quantized container.
_CONTAINER_RANGES = {
    torch.quint8: (0, 255),
    torch.qint8: (-128, 127),
    torch.qint32: (INT32_MIN, INT32_MAX),
}


def _largest_code_of_container(tensor: torch.Tensor) -> int:
    """The largest ``|code|`` a quantized tensor's container can hold around its zero point."""
    low, high = _CONTAINER_RANGES[tensor.dtype]
    zero_point = int(tensor.q_zero_point())
    return max(zero_point - low, high - zero_point)


def _code_range(tensor: torch.Tensor) -> tuple[int, int]:
    """The smallest and largest code of a quantized tensor: one pass over its integer representation."""
    if tensor.numel() == 0:
        return 0, 0
    smallest, largest = torch.aminmax(tensor.int_repr())
    zero_point = int(tensor.q_zero_point())
    return int(smallest) - zero_point, int(largest) - zero_point


class QuantizedWeights(nn.Module):
    """The weight of a layer as integer codes with per-output-channel power-of-two exponents.

    ``quantizer``: the weight's frozen format; ``codes``: the codes to keep (GPTQ's, chosen at calibration)
    on that grid; by default the weight rounded to nearest.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        quantizer: PowerOfTwoQuantizer,
        name: str,
        codes: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        weight = weight.detach()
        self.quantizer = quantizer
        if codes is None:
            codes = self.quantizer.quantize(weight)
        else:
            _check_codes(codes, weight, self.quantizer, name)
        self.register_buffer("codes", codes.to(torch.int16))
        self.register_buffer(
            "values", self.quantizer.dequantize(self.codes.to(torch.float32)), persistent=False
        )

    def channel_exponents(self, channels: int) -> torch.Tensor:
        """One exponent per output channel (axis 0), as int64."""
        exponent = self.quantizer.exponent
        if isinstance(exponent, tuple):
            if self.quantizer.axis != 0:
                raise ValueError(
                    f"a bias needs weight exponents along axis 0, got axis {self.quantizer.axis}"
                )
            return torch.tensor(exponent, dtype=torch.int64)
        return torch.full((channels,), exponent, dtype=torch.int64)


def _check_codes(
    codes: torch.Tensor, weight: torch.Tensor, quantizer: PowerOfTwoQuantizer, name: str
) -> None:
    qmin, qmax = quant_range(quantizer.bits, quantizer.signed)
    if codes.shape != weight.shape or codes.is_floating_point():
        raise ValueError(
            f"{name}: codes must be integers shaped like the weight {tuple(weight.shape)}, got "
            f"{codes.dtype} {tuple(codes.shape)}"
        )
    if int(codes.min()) < qmin or int(codes.max()) > qmax:
        raise ValueError(f"{name}: codes outside the {quantizer.bits}-bit range [{qmin}, {qmax}]")


def bias_codes(bias: torch.Tensor, exponents: torch.Tensor) -> torch.Tensor:
    """``bias`` as int32 codes on the per-channel grid ``2**exponents`` (half to even, saturating)."""
    scaled = bias.to(torch.float64) * torch.pow(2.0, -exponents.to(torch.float64))
    return torch.round(scaled).clamp_(INT32_MIN, INT32_MAX).to(torch.int32)


class IntegerWeightLayer(nn.Module):
    """Conv2d, Conv3d or Linear with power-of-two integer weights and its bias on the accumulator grid."""

    def __init__(
        self,
        layer: nn.Module,
        quantizer: PowerOfTwoQuantizer,
        name: str,
        codes: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(layer, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            raise TypeError(f"IntegerWeightLayer takes Conv2d, Conv3d or Linear, got {type(layer).__name__}")
        self.weights = QuantizedWeights(layer.weight, quantizer, name, codes)
        bias = None if layer.bias is None else layer.bias.detach().clone()
        self.register_buffer("bias", bias)
        self.layer = copy.deepcopy(layer)
        del self.layer.weight
        self.layer.register_parameter("bias", None)
        # Every output element sums over all but the output-channel axis of its channel's weights.
        self.bound = AccumulatorBound(self.weights.codes.to(torch.int64).abs().flatten(1).sum(dim=1))
        # The int8 kernel of these codes (False: it does not apply), built at the first call and again when
        # the codes change (load_state_dict copies into them).
        self._int8: tuple[tuple[int, int], Int8Conv2d | bool] | None = None

    def accumulator_exponents(self, input_exponent: int) -> torch.Tensor:
        """Exponent of each output channel's accumulator: e_in + e_w[c]."""
        return input_exponent + self.weights.channel_exponents(self.weights.codes.shape[0])

    def grid_bias(self, input_exponent: int | None) -> torch.Tensor | None:
        """The bias as the integer kernel adds it (float, unrounded, when the input format is unknown)."""
        if self.bias is None or input_exponent is None:
            return self.bias
        return self._grid_bias(input_exponent)[1].float()

    def _grid_bias(self, input_exponent: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The bias codes on the accumulator grid and their float64 values."""
        exponents = self.accumulator_exponents(input_exponent)
        codes = bias_codes(self.bias, exponents)
        return codes, codes.to(torch.float64) * torch.pow(2.0, exponents)

    def _linear(self, values: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor | None = None):
        if isinstance(self.layer, nn.Linear):
            return nn.functional.linear(values, weights, bias)
        return self.layer._conv_forward(values, weights, bias)

    def output_carrier(
        self, tensor: torch.Tensor, output: PowerOfTwoQuantizer, relu: bool = False
    ) -> torch.Tensor | None:
        """The layer's output (after ``relu`` if set) already in ``output``'s format, as its carrier: what
        ``fast_carrier(output, relu(self(tensor)))`` returns, bit for bit, from the int8 kernel with the
        rounding onto ``output``'s grid fused into it. None where that kernel does not apply, or the format
        is not an 8-bit per-tensor one.

        ReLU and the format's narrower range are one clamp of the codes: rounding is monotone and keeps 0.
        """
        # The kernel reads 8-bit containers only (checked first: the plan below counts its calls).
        if tensor.dtype not in (torch.quint8, torch.qint8) or output.axis is not None or output.bits > 8:
            return None
        encoding = carrier_encoding(output.bits, output.signed)
        kernel = self._int8_kernel()
        if TORCH_QUANTIZED_DTYPES[encoding.container] != torch.quint8 or not kernel:
            return None
        exponent = exponent_of_scale(float(tensor.q_scale()), "input")
        bias_codes = bias = None
        if self.bias is not None:
            bias_codes, bias = self._grid_bias(exponent)
        if self.bound.plan(tensor, bias_codes)[0] != FLOAT32:
            return None
        scale, zero_point = 2.0**output.exponent, encoding.zero_point
        codes = kernel(tensor, None if bias is None else bias.float(), (scale, zero_point))
        if codes is None:
            return None
        low, high = quant_range(output.bits, output.signed)
        low = max(low, 0) if relu else low
        if (low + zero_point, high + zero_point) != (0, 255):
            codes = codes.clamp_(low + zero_point, high + zero_point)
        return torch._make_per_tensor_quantized_tensor(codes, scale, zero_point)

    def _int8_values(self, tensor: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor | None:
        """The layer's output on the int8 kernel; None where that does not apply."""
        kernel = self._int8_kernel()
        return kernel(tensor, bias) if kernel else None

    def _int8_kernel(self) -> Int8Conv2d | bool:
        """The int8 kernel of the current codes; False where it does not apply."""
        codes = self.weights.codes
        version = (codes.data_ptr(), codes._version)
        if self._int8 is None or self._int8[0] != version:
            kernel: Int8Conv2d | bool = False
            if Int8Conv2d.applies(self.layer, codes):
                scales = torch.pow(2.0, self.weights.channel_exponents(codes.shape[0]).double())
                kernel = Int8Conv2d(self.layer, codes, scales)
            self._int8 = (version, kernel)
        return self._int8[1]

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        if not tensor.is_quantized:  # float values: no grid, nothing to keep exact
            return self._linear(tensor, self.weights.values, self.bias)
        # The values themselves only where the float32 path needs them: the int8 kernel reads the codes.
        exponent = exponent_of_scale(float(tensor.q_scale()), "input")
        codes = bias = None
        if self.bias is not None:
            codes, bias = self._grid_bias(exponent)
        plan = self.bound.plan(tensor, codes)
        if plan[0] == FLOAT32:
            bias = None if bias is None else bias.float()
            # The int8 kernel's exact sums on the same grid are the float32 path's values (int8_conv.py).
            result = self._int8_values(tensor, bias)
            if result is not None:
                return result
            return self._linear(tensor.dequantize(), self.weights.values, bias)
        sums = exact_sums(self._linear, tensor, self.weights.values, plan)
        return sums if bias is None else add_channel_bias(sums, bias, self.layer)


def add_channel_bias(sums: torch.Tensor, bias: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """``sums + bias`` per output channel: the last axis of a linear layer's output, axis 1 of a
    convolution's."""
    if isinstance(layer, nn.Linear):
        return sums + bias
    return sums + bias.view((1, -1) + (1,) * (sums.dim() - 2))


class IntegerVoteTransform(nn.Module):
    """``VoteTransform`` with power-of-two integer ``W_ij``; its optional bias stays float (added once)."""

    def __init__(
        self,
        layer: VoteTransform,
        quantizer: PowerOfTwoQuantizer,
        name: str,
        codes: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.weights = QuantizedWeights(layer.weight, quantizer, name, codes)
        self.register_buffer("bias", None if layer.bias is None else layer.bias.detach().clone())
        # Each vote sums over the input capsule's dimension k.
        self.bound = AccumulatorBound(self.weights.codes.to(torch.int64).abs().sum(dim=-1).flatten())

    @staticmethod
    def _votes(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ijdk,nik->nijd", weights, values)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        values, exponent = values_and_exponent(tensor)
        plan = (FLOAT32, 0) if exponent is None else self.bound.plan(tensor)
        if plan[0] == FLOAT32:
            votes = self._votes(values, self.weights.values)
        else:
            votes = exact_sums(self._votes, tensor, self.weights.values, plan)
        return votes if self.bias is None else votes + self.bias


def integer_weight_layer(
    layer: nn.Module,
    quantizer: PowerOfTwoQuantizer,
    name: str,
    codes: torch.Tensor | None = None,
) -> nn.Module:
    """The integer-weight form of a float layer with one weight (``codes``: see ``QuantizedWeights``)."""
    if isinstance(layer, VoteTransform):
        return IntegerVoteTransform(layer, quantizer, name, codes)
    return IntegerWeightLayer(layer, quantizer, name, codes)
