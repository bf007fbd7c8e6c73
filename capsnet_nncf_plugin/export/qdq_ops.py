"""The quantize / dequantize steps of an exported model as ``torch.library`` ops with ONNX translations.

torch's own quantize ops export only full 8-bit ranges and have no meta kernels (no dynamic batch), so the
export forms use these three ops instead. Each computes exactly what its ONNX translation computes:

* ``capsnet_export::quantize_linear(x, exponent, zero_point, low, high, container)``: QuantizeLinear with
  scale ``2**exponent`` (round half to even, saturate), then a Clip to ``[low, high]`` when the format is
  narrower than its container;
* ``capsnet_export::dequantize_linear(codes, exponent, zero_point)``: DequantizeLinear;
* ``capsnet_export::dequantize_channels(codes, exponents, axis, zero_point)``: per-channel
  DequantizeLinear of a constant (weights, int32 biases), one zero point for all channels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from capsnet_nncf_plugin.core.integer_format import IntegerType, code_type, quant_range, transport_encoding
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.core.torch_types import torch_dtype

NAMESPACE = "capsnet_export"

#: The containers the ops can store codes in, by the int a custom op's schema carries instead of a dtype.
_CONTAINER_TYPES = (
    IntegerType.UINT8,
    IntegerType.INT8,
    IntegerType.UINT16,
    IntegerType.INT16,
    IntegerType.INT32,
)
CONTAINERS: dict[int, tuple[torch.dtype, type]] = {
    code: (torch_dtype(container), np.dtype(container.value).type)
    for code, container in enumerate(_CONTAINER_TYPES)
}
_CODE_OF_DTYPE = {dtype: code for code, (dtype, _) in CONTAINERS.items()}


def container_code(dtype: torch.dtype) -> int:
    return _CODE_OF_DTYPE[dtype]


def _scale(exponent: int | list[int] | torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.pow(2.0, torch.as_tensor(exponent, dtype=torch.float64)).to(dtype)


@torch.library.custom_op(f"{NAMESPACE}::quantize_linear", mutates_args=())
def quantize_linear(
    x: torch.Tensor, exponent: int, zero_point: int, low: int, high: int, container: int
) -> torch.Tensor:
    codes = torch.round(x * _scale(-exponent)) + zero_point
    return codes.clamp_(low, high).to(CONTAINERS[container][0])


@quantize_linear.register_fake
def _quantize_linear_fake(
    x: torch.Tensor, exponent: int, zero_point: int, low: int, high: int, container: int
) -> torch.Tensor:
    return x.new_empty(x.shape, dtype=CONTAINERS[container][0])


def _check_container(codes: torch.Tensor, container: int) -> None:
    if codes.dtype != CONTAINERS[container][0]:
        raise TypeError(f"codes are {codes.dtype}, the op was told {CONTAINERS[container][0]}")


@torch.library.custom_op(f"{NAMESPACE}::dequantize_linear", mutates_args=())
def dequantize_linear(codes: torch.Tensor, exponent: int, zero_point: int, container: int) -> torch.Tensor:
    _check_container(codes, container)
    return (codes.to(torch.int32) - zero_point).to(torch.float32) * _scale(exponent)


@dequantize_linear.register_fake
def _dequantize_linear_fake(
    codes: torch.Tensor, exponent: int, zero_point: int, container: int
) -> torch.Tensor:
    return codes.new_empty(codes.shape, dtype=torch.float32)


@torch.library.custom_op(f"{NAMESPACE}::dequantize_channels", mutates_args=())
def dequantize_channels(
    codes: torch.Tensor, exponents: list[int], axis: int, zero_point: int, container: int
) -> torch.Tensor:
    _check_container(codes, container)
    shape = [1] * codes.dim()
    shape[axis] = -1
    # int32 codes may exceed float32's 24 bits: convert first, as DequantizeLinear does, then scale exactly.
    centred = codes.to(torch.int64) - zero_point if zero_point else codes
    return centred.to(torch.float32) * _scale(exponents).view(shape)


@dequantize_channels.register_fake
def _dequantize_channels_fake(
    codes: torch.Tensor, exponents: list[int], axis: int, zero_point: int, container: int
) -> torch.Tensor:
    return codes.new_empty(codes.shape, dtype=torch.float32)


# --- formats -------------------------------------------------------------------------------------


def activation_container(quantizer: PowerOfTwoQuantizer) -> tuple[torch.dtype, int]:
    """Container and zero point of an activation between layers
    (:func:`~capsnet_nncf_plugin.core.integer_format.transport_encoding`)."""
    encoding = transport_encoding(quantizer.bits, quantizer.signed)
    return torch_dtype(encoding.container), encoding.zero_point


def code_container(quantizer: PowerOfTwoQuantizer) -> torch.dtype:
    """Container of plain signed codes (what the ``capsnet`` integer ops take): int8 or int16."""
    if not quantizer.signed:
        raise ValueError("integer capsule ops take signed codes")
    return torch_dtype(code_type(quantizer.bits, signed=True))


def quantize_to(
    x: torch.Tensor, quantizer: PowerOfTwoQuantizer, dtype: torch.dtype, zero_point: int
) -> torch.Tensor:
    """``x`` quantized to ``quantizer``'s format, stored in ``dtype`` with ``zero_point``."""
    low, high = quant_range(quantizer.bits, quantizer.signed)
    return torch.ops.capsnet_export.quantize_linear(
        x, quantizer.exponent, zero_point, low + zero_point, high + zero_point, container_code(dtype)
    )


def fake_quantize(x: torch.Tensor, quantizer: PowerOfTwoQuantizer) -> torch.Tensor:
    """A Q/DQ pair in the activation container: the values ``quantizer.fake_quantize(x)`` gives."""
    dtype, zero_point = activation_container(quantizer)
    codes = quantize_to(x, quantizer, dtype, zero_point)
    return dequantize_codes(codes, quantizer.exponent, zero_point)


def dequantize_codes(codes: torch.Tensor, exponent: int, zero_point: int = 0) -> torch.Tensor:
    """DequantizeLinear of integer codes in whatever container they are."""
    return torch.ops.capsnet_export.dequantize_linear(
        codes, exponent, zero_point, container_code(codes.dtype)
    )


def dequantize_constant(
    codes: torch.Tensor, exponents: list[int], axis: int, zero_point: int = 0
) -> torch.Tensor:
    """Per-channel DequantizeLinear of constant codes (weights, biases)."""
    container = container_code(codes.dtype)
    return torch.ops.capsnet_export.dequantize_channels(codes, exponents, axis, zero_point, container)


def fake_quantize_as(x: torch.Tensor, bits: int, signed: bool, exponent: int) -> torch.Tensor:
    """:func:`fake_quantize` with the format spelled out (what a rewritten FX graph node calls)."""
    return fake_quantize(x, PowerOfTwoQuantizer(bits, signed, exponent))


def signed_codes(x: torch.Tensor, quantizer: PowerOfTwoQuantizer) -> torch.Tensor:
    """Signed integer codes for a ``capsnet`` op (int8 / int16, zero point 0)."""
    return quantize_to(x, quantizer, code_container(quantizer), 0)


# --- ONNX translations ---------------------------------------------------------------------------


def onnx_translations() -> dict[Callable, Callable]:
    """``custom_translation_table`` entries for the three ops (onnxscript imported only when exporting)."""
    from onnxscript import ir
    from onnxscript.onnx_opset import opset21 as op

    def constant(value: object, dtype: type) -> object:
        return op.Constant(value=ir.tensor(np.asarray(value, dtype=dtype)))

    def quantize_linear_onnx(x, exponent: int, zero_point: int, low: int, high: int, container: int):
        numpy_type = CONTAINERS[container][1]
        info = np.iinfo(numpy_type)
        narrower = low > info.min or high < info.max
        if narrower and info.bits > 8:
            # onnxruntime has no 16/32-bit integer Clip: clip on the float side, at the grid's end points
            # (exact: rounding is monotone and the end points are on the grid). Nothing fuses there anyway.
            scale = 2.0**exponent
            bounds = ((low - zero_point) * scale, (high - zero_point) * scale)
            x = op.Clip(x, constant(bounds[0], np.float32), constant(bounds[1], np.float32))
        codes = op.QuantizeLinear(x, constant(2.0**exponent, np.float32), constant(zero_point, numpy_type))
        if narrower and info.bits <= 8:
            # An integer Clip after QuantizeLinear keeps DQ -> op -> Q groups intact for fusion.
            codes = op.Clip(codes, constant(low, numpy_type), constant(high, numpy_type))
        return codes

    def dequantize_linear_onnx(codes, exponent: int, zero_point: int, container: int):
        zero = constant(zero_point, CONTAINERS[container][1])
        return op.DequantizeLinear(codes, constant(2.0**exponent, np.float32), zero)

    def dequantize_channels_onnx(codes, exponents: list[int], axis: int, zero_point: int, container: int):
        scales = constant([2.0**e for e in exponents], np.float32)
        zeros = constant([zero_point] * len(exponents), CONTAINERS[container][1])
        return op.DequantizeLinear(codes, scales, zeros, axis=axis)

    return {
        torch.ops.capsnet_export.quantize_linear.default: quantize_linear_onnx,
        torch.ops.capsnet_export.dequantize_linear.default: dequantize_linear_onnx,
        torch.ops.capsnet_export.dequantize_channels.default: dequantize_channels_onnx,
    }
