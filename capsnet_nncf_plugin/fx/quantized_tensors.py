"""Torch quantized tensors as the carriers of a power-of-two format between quantized modules.

Every quantized module returns a torch quantized tensor (see ``PowerOfTwoQuantizer.to_quantized_tensor``),
and torch's own ``quantize_per_tensor`` produces them after float ops; so each module reads its input's
exponent at run time, which is what lets it put its bias on the accumulator grid 2^(e_in + e_w).
"""

from __future__ import annotations

import math

import torch

from capsnet_nncf_plugin.observers import CalibrationError, quant_range
from capsnet_nncf_plugin.observers.activation_observer import signed_from_container
from capsnet_nncf_plugin.observers.quantizer import PowerOfTwoQuantizer


def exponent_of_scale(scale: float, where: str) -> int:
    """``e`` with ``scale == 2**e`` exactly; anything else is not a scale this plugin produced."""
    mantissa, exponent = math.frexp(scale)
    if mantissa != 0.5:
        raise CalibrationError(
            f"{where}: scale {scale!r} is not a power of two; quantize with the plugin's qconfigs"
        )
    return exponent - 1


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
    return values if quantizer is None else quantizer.to_quantized_tensor(values)


def values_and_exponent(tensor: torch.Tensor) -> tuple[torch.Tensor, int | None]:
    """Float values of a (quantized or float) tensor and its exponent (``None`` for a float tensor)."""
    if not tensor.is_quantized:
        return tensor, None
    return tensor.dequantize(), exponent_of_scale(float(tensor.q_scale()), "input")
