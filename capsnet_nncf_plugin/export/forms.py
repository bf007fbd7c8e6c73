"""Export forms: each quantized module rewritten with Q/DQ ops and the ``capsnet`` integer ops.

An export form takes float values on its input grid (a DequantizeLinear output) and returns float values on
its output grid, computing exactly what the quantized module computes, in ops that translate to ONNX:

* weights and biases as constant integer codes behind a per-channel DequantizeLinear (int32 biases on the
  accumulator grid, as onnxruntime's QLinearConv adds them), so DQ -> Conv -> Q groups fuse;
* outputs as Q -> DQ pairs in uint8 (zero point 128 for signed formats: the u8 x s8 fast path);
* squash and routing as ``capsnet.IntSquash`` / ``capsnet.IntDynamicRouting`` on int8/int16 codes.

The forms are kept apart from the quantized modules (as brevitas keeps export handlers apart from its
layers); :data:`BUILTIN_EXPORT_FORMS` maps each quantized module class to its builder.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from capsnet_nncf_plugin.core.fixed_ranges import squash_output_exponent
from capsnet_nncf_plugin.core.integer_format import (
    IntegerType,
    quant_range,
    transport_encoding,
    weight_encoding,
)
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.core.torch_types import torch_dtype
from capsnet_nncf_plugin.errors import ExportError
from capsnet_nncf_plugin.export.qdq_ops import (
    dequantize_codes,
    dequantize_constant,
    fake_quantize,
    quantize_to,
    signed_codes,
)
from capsnet_nncf_plugin.nn import ConvCaps3d
from capsnet_nncf_plugin.onnx_domain.int4 import INT4_BUFFER
from capsnet_nncf_plugin.quantized.modules import (
    WIDE_SQUASH_BITS,
    QuantizedLayer,
    QuantizedModule,
    QuantizedRoutingLayer,
    QuantizedSquashLayer,
)
from capsnet_nncf_plugin.quantized.weights import (
    FLOAT32,
    IntegerVoteTransform,
    IntegerWeightLayer,
    add_channel_bias,
    bias_codes,
)


def _register_codes(
    module: nn.Module, codes: torch.Tensor, quantizer: PowerOfTwoQuantizer, unsigned: bool = False
) -> list[int]:
    """Store a weight's codes in the container ``weight_encoding`` picks; returns its per-channel exponents.

    With ``unsigned``, 5..8-bit weights are stored as uint8 with zero point 128: onnxruntime then runs the
    convolution with its u8 x u8 kernels, exact everywhere, where u8 x s8 kernels on x86 CPUs without VNNI
    saturate pairs of products at 16 bits (``vpmaddubsw``) and can change results. INT4 codes stay in an
    int8 buffer named ``INT4_BUFFER`` until the export packs them.
    """
    encoding = weight_encoding(quantizer.bits, unsigned)
    module.codes_zero_point = encoding.zero_point
    module.codes_name = INT4_BUFFER if encoding.container == IntegerType.INT4 else "codes"
    module.register_buffer(
        module.codes_name, (codes + encoding.zero_point).to(torch_dtype(encoding.container))
    )
    axis = quantizer.axis if quantizer.axis is not None else 0
    module.weight_axis = axis
    if isinstance(quantizer.exponent, tuple):
        return list(quantizer.exponent)
    return [quantizer.exponent] * codes.shape[axis]


class ExportWeightLayer(nn.Module):
    """Conv2d / Conv3d / Linear: DQ(weight codes), DQ(int32 bias codes), the float op.

    Where a format wider than 8 bits keeps onnxruntime from its integer kernels and the sums of the widest
    inputs the format allows can exceed float32's exact range (``AccumulatorBound``), the input codes are
    cut into parts of ``part_bits`` bits, ``x = sum_j part_j * 2^(j * part_bits)``, each small enough that
    its float32 pass is exact. The passes are joined in float64 with the bias: exactly the sums the torch
    model computes (split or float64). The float64 values go to the output quantization (:func:`on_grid`),
    which rounds them once. onnxruntime's convolutions are float32 only; this keeps them exact.
    """

    def __init__(
        self, layer: IntegerWeightLayer, input_format: PowerOfTwoQuantizer, unsigned_weights: bool
    ) -> None:
        super().__init__()
        self.layer = layer.layer
        weights = layer.weights
        self.weight_exponents = _register_codes(self, weights.codes, weights.quantizer, unsigned_weights)
        self.input_exponent = input_format.exponent
        self.bias_exponents: list[int] | None = None
        largest_bias = 0
        if layer.bias is not None:
            exponents = layer.accumulator_exponents(input_format.exponent)
            self.register_buffer("bias_codes", bias_codes(layer.bias, exponents))
            self.bias_exponents = [int(e) for e in exponents]
            largest_bias = int(self.bias_codes.abs().max()) if self.bias_codes.numel() else 0
        low, high = quant_range(input_format.bits, input_format.signed)
        self.parts, self.part_bits = 1, 0
        # 8-bit weights on 8-bit inputs fuse into onnxruntime's integer kernels (QLinearConv), whose int32
        # accumulators are exact: only wider formats run as a float32 convolution that could round.
        integer_kernel = weights.quantizer.bits <= 8 and input_format.bits <= 8
        if not integer_kernel and layer.bound.plan_for_codes(low, high, largest_bias)[0] != FLOAT32:
            self.parts, self.part_bits = layer.bound.parts(low, high), layer.bound.part_bits()
            if self.parts == 0:
                raise ExportError(
                    f"a layer whose weight codes sum to {layer.bound.largest_l1} in magnitude per output "
                    "cannot be computed exactly by float32 convolutions; give it fewer weight bits"
                )
            if self.bias_exponents is not None:  # the bias on the accumulator grid, exact in float64
                scales = torch.tensor([2.0**e for e in self.bias_exponents], dtype=torch.float64)
                self.register_buffer("grid_bias", self.bias_codes.double() * scales)

    def _op(self, values: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if isinstance(self.layer, nn.Linear):
            return nn.functional.linear(values, weight, bias)
        return self.layer._conv_forward(values, weight, bias)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        codes = getattr(self, self.codes_name)
        weight = dequantize_constant(codes, self.weight_exponents, self.weight_axis, self.codes_zero_point)
        if self.parts == 1:
            bias = None
            if self.bias_exponents is not None:
                bias = dequantize_constant(self.bias_codes, self.bias_exponents, 0)
            return self._op(values, weight, bias)
        rest = values * 2.0**-self.input_exponent  # the input codes, exact in float32
        # A zero bias, not None: torch's exporter gives a bias-less Conv3d a bias of the wrong size.
        zero = None if isinstance(self.layer, nn.Linear) else torch.zeros(codes.shape[0])
        sums = None
        for part in range(self.parts):
            if part < self.parts - 1:
                upper = torch.floor(rest * 2.0**-self.part_bits)
                digit, rest = rest - upper * 2.0**self.part_bits, upper
            else:
                digit = rest  # the top part keeps the sign
            partial = self._op(digit, weight, zero).double() * 2.0 ** (part * self.part_bits)
            sums = partial if sums is None else sums + partial
        sums = sums * 2.0**self.input_exponent
        return sums if self.bias_exponents is None else add_channel_bias(sums, self.grid_bias, self.layer)


def on_grid(values: torch.Tensor, quantizer: PowerOfTwoQuantizer) -> torch.Tensor:
    """Float64 sums (a split weight layer's) rounded onto ``quantizer``'s grid in float64, half to even, as
    the torch model rounds them, then saturated in float32 (exact: the grid has at most 16-bit codes), so
    that the Q/DQ ops after it only re-encode; float32 values pass through."""
    if values.dtype != torch.float64:
        return values
    low, high = quant_range(quantizer.bits, quantizer.signed)
    scale = 2.0**quantizer.exponent
    # Saturating after float32: a code beyond 2^24 may change there, but stays beyond the range.
    return torch.round(values * (1.0 / scale)).float().clamp(low, high) * scale


class ExportVoteTransform(nn.Module):
    """The vote transform as one batched MatMul over the input capsules, ``W_ij`` stored pre-transposed.

    ``votes[n, i, j, d] = sum_k W[i, j, d, k] u[n, i, k]`` is ``u^T [I, N, K] @ W' [I, K, J*D]``: onnxruntime
    runs that as I small GEMMs, many times faster than its generic Einsum; sums of ``K`` grid products are
    exact either way.
    """

    def __init__(self, layer: IntegerVoteTransform) -> None:
        super().__init__()
        weights = layer.weights
        inputs, outputs, dim_out, dim_in = weights.codes.shape
        if weights.quantizer.axis not in (None, 0):
            raise ValueError(
                f"vote weights quantized along axis {weights.quantizer.axis}; export needs axis 0"
            )
        self.out_capsules, self.out_dim = outputs, dim_out
        transposed = weights.codes.permute(0, 3, 1, 2).reshape(inputs, dim_in, outputs * dim_out)
        self.weight_exponents = _register_codes(self, transposed, weights.quantizer)
        self.register_buffer("bias", layer.bias)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        weight = dequantize_constant(getattr(self, self.codes_name), self.weight_exponents, self.weight_axis)
        votes = torch.matmul(values.transpose(0, 1), weight)  # [I, N, J*D]
        votes = votes.reshape(votes.shape[0], votes.shape[1], self.out_capsules, self.out_dim)
        votes = votes.permute(1, 0, 2, 3)
        return votes if self.bias is None else votes + self.bias


#: ``vpmaddubsw`` adds two u8 x s8 products into a signed 16-bit lane.
INT16_MAX = 2**15 - 1


def u8s8_is_exact(weight_bits: int, input_format: PowerOfTwoQuantizer) -> bool:
    """Whether onnxruntime's u8 x s8 kernels cannot saturate for these weights and this input.

    Inputs travel as uint8 (zero point 128 when signed), weights as int8; on CPUs without VNNI a pair of
    products must fit in 16 bits: ``2 * max input code * max |weight code| <= 32767``. 7-bit weights, or
    7-bit unsigned inputs, always fit; 8-bit weights on 8-bit inputs do not.
    """
    encoding = transport_encoding(input_format.bits, input_format.signed)
    if encoding.container != IntegerType.UINT8 or weight_bits > 8:
        return False
    max_input = encoding.stored_range(input_format.bits, input_format.signed)[1]
    return 2 * max_input * 2 ** (weight_bits - 1) <= INT16_MAX


def _export_weighted(
    layer: nn.Module, input_format: PowerOfTwoQuantizer, options: ExportOptions
) -> nn.Module:
    if isinstance(layer, IntegerVoteTransform):
        return ExportVoteTransform(layer)
    bits = layer.weights.quantizer.bits
    unsigned = options.unsigned_weights and not u8s8_is_exact(bits, input_format)
    return ExportWeightLayer(layer, input_format, unsigned)


@dataclass(frozen=True)
class ExportOptions:
    """How the export forms encode what the ONNX standard leaves open."""

    # 5..8-bit weights as uint8 + zero point 128 where u8 x s8 kernels could saturate (see _register_codes)
    unsigned_weights: bool = True


class ExportForm(nn.Module):
    """A quantized module in export form: a copy whose weighted sub-layer is swapped for its Q/DQ form.

    The float arithmetic around the weights (poses, votes, batch norm, ReLU) stays the quantized module's
    own (``compute`` / ``pre_activation`` / ``votes``, which accept float values on the input grid); the
    subclasses only write the quantization steps as exportable ops.
    """

    def __init__(
        self,
        module: QuantizedModule,
        weighted_path: str | None,
        input_format: PowerOfTwoQuantizer,
        narrowing: PowerOfTwoQuantizer | None,
        options: ExportOptions,
    ) -> None:
        super().__init__()
        self.narrowing = narrowing
        self.module = copy.deepcopy(module)
        if weighted_path is not None and _has_submodule(self.module, weighted_path):
            parent_path, _, child = weighted_path.rpartition(".")
            parent = self.module.get_submodule(parent_path) if parent_path else self.module
            setattr(parent, child, _export_weighted(getattr(parent, child), input_format, options))
            if isinstance(getattr(self.module, "weights", None), nn.Module):
                self.module.weights = None  # the integer codes now live in the export form only

    def narrow(self, values: torch.Tensor) -> torch.Tensor:
        return values if self.narrowing is None else fake_quantize(values, self.narrowing)


def _has_submodule(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


class ExportLayer(ExportForm):
    def __init__(
        self,
        module: QuantizedLayer,
        input_format: PowerOfTwoQuantizer,
        narrowing: PowerOfTwoQuantizer | None,
        options: ExportOptions,
    ) -> None:
        super().__init__(module, "weighted", input_format, narrowing, options)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        module, quantizer = self.module, self.module.output_quantizer
        values = self.narrow(values)
        if module.weighted is not None and module.relu:
            # ReLU after the rounding (they commute), so that no float64 ReLU reaches the ONNX graph: the
            # exporter writes it as a Clip whose float32 bound onnxruntime refuses beside float64 values.
            return fake_quantize(torch.relu(on_grid(module.weighted(values), quantizer)), quantizer)
        return fake_quantize(on_grid(module.compute(values), quantizer), quantizer)


class ExportSquashLayer(ExportForm):
    def __init__(
        self,
        module: QuantizedSquashLayer,
        input_format: PowerOfTwoQuantizer,
        narrowing: PowerOfTwoQuantizer | None,
        options: ExportOptions,
    ) -> None:
        super().__init__(module, "layer.conv", input_format, narrowing, options)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        module = self.module
        pre = on_grid(module.pre_activation(self.narrow(values)), module.pre_quantizer)
        if module.pre_quantizer.bits <= 8:
            # uint8 with zero point 128 after the convolution (so DQ -> Conv -> Q fuses into QLinearConv with
            # uint8 in and out), re-centred to int16 codes for IntSquash.
            codes = quantize_to(pre, module.pre_quantizer, torch.uint8, 128).to(torch.int16) - 128
        else:
            codes = signed_codes(pre, module.pre_quantizer)
        wide = torch.ops.capsnet.int_squash(
            codes, module.pre_quantizer.exponent, WIDE_SQUASH_BITS, module.dim
        )
        squashed = dequantize_codes(wide, squash_output_exponent(WIDE_SQUASH_BITS))
        return fake_quantize(squashed, module.output_quantizer)


class ExportRoutingLayer(ExportForm):
    def __init__(
        self,
        module: QuantizedRoutingLayer,
        input_format: PowerOfTwoQuantizer,
        narrowing: PowerOfTwoQuantizer | None,
        options: ExportOptions,
    ) -> None:
        super().__init__(module, "layer.votes", input_format, narrowing, options)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        module = self.module
        values = self.narrow(values)
        codes = signed_codes(on_grid(module.votes(values), module.votes_quantizer), module.votes_quantizer)
        routed = torch.ops.capsnet.int_dynamic_routing(codes, *module.routing.as_op_arguments())
        # Re-quantized (exactly: same grid) into the uint8 activation container, so onnxruntime's QDQ
        # propagation across the reshapes that follow sees the same encoding as everywhere else (an int8
        # DequantizeLinear there makes onnxruntime 1.32 build an invalid QuantizeLinear).
        outputs = fake_quantize(
            dequantize_codes(routed, module.routing.output_exponent), module.output_quantizer
        )
        if isinstance(module.layer, ConvCaps3d):
            outputs = module.layer.unfold_positions(outputs, values)
        return outputs


ExportFormBuilder = Callable[
    [QuantizedModule, PowerOfTwoQuantizer, "PowerOfTwoQuantizer | None", ExportOptions], nn.Module
]

#: The built-in export forms (``builder(module, input_format, narrowing, options)``), registered through the
#: ``capsnet_export_forms`` plugin hook; plugins may add forms for their own quantized modules.
BUILTIN_EXPORT_FORMS: dict[type[QuantizedModule], ExportFormBuilder] = {
    QuantizedLayer: ExportLayer,
    QuantizedSquashLayer: ExportSquashLayer,
    QuantizedRoutingLayer: ExportRoutingLayer,
}
