"""Torch quantized tensors as the carriers of a power-of-two format between quantized modules.

Every quantized module returns a torch quantized tensor (:func:`to_carrier`), and torch's own
``quantize_per_tensor`` produces them after float ops (reshapes, additions); so each module reads its
input's exponent at run time, which is what lets it put its bias on the accumulator grid 2^(e_in + e_w).
The container and zero point of each format are
:func:`~capsnet_nncf_plugin.core.integer_format.carrier_encoding`'s.
"""

from __future__ import annotations

import math

import torch

from capsnet_nncf_plugin.core.integer_format import carrier_encoding, quant_range, signed_from_carrier
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.core.torch_types import TORCH_QUANTIZED_DTYPES, integer_type_of_quantized
from capsnet_nncf_plugin.errors import CalibrationError


def exponent_of_scale(scale: float, where: str) -> int:
    """``e`` with ``scale == 2**e`` exactly; anything else is not a scale this plugin produced."""
    mantissa, exponent = math.frexp(scale)
    if mantissa != 0.5:
        raise CalibrationError(
            f"{where}: scale {scale!r} is not a power of two; quantize with the plugin's qconfigs"
        )
    return exponent - 1


def carrier_dtype(bits: int, signed: bool) -> torch.dtype:
    """The torch quantized dtype that carries a ``bits``-wide format."""
    return TORCH_QUANTIZED_DTYPES[carrier_encoding(bits, signed).container]


def signed_from_container(dtype: torch.dtype, zero_point: int) -> bool:
    """Whether a carrier of quantized dtype ``dtype`` and ``zero_point`` holds a signed format."""
    return signed_from_carrier(integer_type_of_quantized(dtype), zero_point)


def to_carrier(quantizer: PowerOfTwoQuantizer, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` quantized to ``quantizer``'s per-tensor format, as a torch quantized tensor."""
    if quantizer.axis is not None:
        raise ValueError("only per-tensor formats travel as torch quantized tensors")
    encoding = carrier_encoding(quantizer.bits, quantizer.signed)
    return torch.quantize_per_tensor(
        quantizer.fake_quantize(tensor),
        2.0**quantizer.exponent,
        encoding.zero_point,
        TORCH_QUANTIZED_DTYPES[encoding.container],
    )


def read_input(tensor: torch.Tensor, bits: int) -> tuple[torch.Tensor, PowerOfTwoQuantizer | None]:
    """A module input as float values on its grid, and its format if it came as a quantized tensor.

    A quantized tensor holds up to 8 (or 32) bits in its container; the module's own ``bits`` narrow it.
    """
    if not tensor.is_quantized:
        return tensor, None
    zero_point = int(tensor.q_zero_point())
    signed = signed_from_container(tensor.dtype, zero_point)
    quantizer = PowerOfTwoQuantizer(bits, signed, exponent_of_scale(float(tensor.q_scale()), "input"))
    low, high = quant_range(bits, signed)
    codes = (tensor.int_repr().to(torch.int64) - zero_point).clamp_(low, high)
    return quantizer.dequantize(codes.to(torch.float32)), quantizer


def narrow_input(tensor: torch.Tensor, bits: int) -> torch.Tensor:
    """The input in the module's own (possibly narrower) format, still a quantized tensor if it was one."""
    if tensor.is_quantized and tensor.dtype == torch.quint8 and bits >= 8:
        return tensor  # a uint8 container holds nothing wider than 8 bits: nothing to narrow
    values, quantizer = read_input(tensor, bits)
    return values if quantizer is None else to_carrier(quantizer, values)


def values_and_exponent(tensor: torch.Tensor) -> tuple[torch.Tensor, int | None]:
    """Float values of a (quantized or float) tensor and its exponent (``None`` for a float tensor)."""
    if not tensor.is_quantized:
        return tensor, None
    return tensor.dequantize(), exponent_of_scale(float(tensor.q_scale()), "input")


def as_float(tensor: torch.Tensor) -> torch.Tensor:
    """The values of a quantized or float tensor as a float tensor."""
    return tensor.dequantize() if tensor.is_quantized else tensor
