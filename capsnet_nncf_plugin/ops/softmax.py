"""Integer softmax for routing's coupling coefficients: base-2 exponentials from two tables and shifts.

``c_j = exp(b_j) / sum_k exp(b_k)`` is evaluated as ``2^(-(max - b_j) * log2(e))`` in fixed point:

1. ``x_j = max_k b_k - b_j >= 0`` (exact; ``< 2^16`` for 16-bit logits).
2. ``z_j = round(x_j * LOG2E_Q24 * 2^(e - 8))``: the base-2 exponent with 16 fractional bits
   (``LOG2E_Q24 = round(log2(e) * 2^24)``, so the scale of ``x * LOG2E_Q24`` is ``2^(e - 24)``).
3. ``k = z >> 16``, ``hi = (z >> 8) & 255``, ``lo = z & 255``;
   ``E_j = round(EXP2_COARSE[hi] * EXP2_FINE[lo] / 2^(30 + min(k, 32)))``, i.e. ``2^(-z/65536) * 2^30``.
4. ``Z = sum_j E_j``; ``C_j = saturate(round(E_j * 2^bits_out / Z), unsigned bits_out)``.

All roundings are half away from zero (every quantity here is non-negative, so half up). The max element
has ``E = 2^30`` exactly, so ``Z >= 2^30``. The error against float softmax is below
``0.5 + 2^bits_out * 3e-6`` LSB (under 0.7 LSB at 16 bits) except where saturation costs up to 1 LSB.
"""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.core.integer_format import check_bits
from capsnet_nncf_plugin.ops.exp2_tables import EXP2_COARSE, EXP2_FINE, EXP2_TABLE_SCALE_BITS
from capsnet_nncf_plugin.ops.fixed_point import round_shift, rounded_divide, saturate
from capsnet_nncf_plugin.ops.operands import (
    check_exponent,
    check_integer_dtype,
    check_integer_tensor,
    storage_dtype,
)

#: ``round(log2(e) * 2^24)``; log2(e) * 2^24 = 24204406.3231..., a relative error of 1.3e-8.
LOG2E_Q24 = 24204406
#: Fractional bits of ``LOG2E_Q24``.
LOG2E_FRACTION_BITS = 24
#: Fractional bits of the base-2 exponent ``z``: one byte indexes each table.
EXPONENT_FRACTION_BITS = 16
#: Integer parts of ``z`` at or above this give ``E = 0`` (``2^60 / 2^62`` rounds to 0), so ``k`` is clamped
#: to it and no shift exceeds 62.
MAX_EXPONENT_INTEGER_PART = 32
#: Widest input: logits are at most 16-bit, so ``max - b < 2^16`` and ``x * LOG2E_Q24 < 2^41``.
SOFTMAX_INPUT_BITS = 16
#: Largest softmax length: ``Z <= J * 2^30`` and ``E * 2^16`` must stay below 2^62 with room to double.
MAX_SOFTMAX_LENGTH = 1 << 16


def check_softmax_arguments(b: torch.Tensor, exponent_in: int, bits_out: int, dim: int) -> int:
    """Validate everything but the values of ``b``; return ``dim`` as a non-negative index."""
    check_integer_dtype(b, "b")
    check_exponent(exponent_in, "exponent_in")
    check_bits(bits_out, "bits_out")
    if b.dim() == 0:
        raise ValueError(
            "b is a scalar; softmax needs a dimension to normalise over (pass a tensor [..., J])"
        )
    if isinstance(dim, bool) or not isinstance(dim, int) or not -b.dim() <= dim < b.dim():
        raise ValueError(f"dim={dim!r} is not a dimension of b with shape {tuple(b.shape)}")
    dim %= b.dim()
    length = b.shape[dim]
    if isinstance(length, int) and length > MAX_SOFTMAX_LENGTH:
        raise ValueError(
            f"b has {length} entries along dim={dim}; int_softmax supports at most {MAX_SOFTMAX_LENGTH} "
            f"(so that the sum of exponentials stays within 2^46)"
        )
    return dim


def int_softmax(b: torch.Tensor, exponent_in: int, bits_out: int, dim: int = -1) -> torch.Tensor:
    """Softmax of quantized logits ``b`` (value ``b * 2^exponent_in``) along ``dim``, in integers.

    ``b``: int8/int16/int32/int64 values in ``[-2^15, 2^15 - 1]``; ``exponent_in`` in ``-31..6``;
    ``bits_out`` in ``2..16``. Returns unsigned ``bits_out``-bit coefficients with exponent ``-bits_out``
    (1.0 saturates to ``2^bits_out - 1``) as uint8 (``bits_out <= 8``) or int32.
    """
    dim = check_softmax_arguments(b, exponent_in, bits_out, dim)
    values = check_integer_tensor(b, "b", SOFTMAX_INPUT_BITS)
    return softmax_int64(values, exponent_in, bits_out, dim).to(storage_dtype(bits_out, signed=False))


def softmax_int64(values: torch.Tensor, exponent_in: int, bits_out: int, dim: int) -> torch.Tensor:
    """The arithmetic of :func:`int_softmax` on already validated int64 values; returns int64."""
    if values.numel() == 0:
        return values.clone()
    distance = values.amax(dim=dim, keepdim=True) - values  # x in 0..2^16 - 1
    # 8 - e >= 2 for every supported exponent: always a right shift, z < 2^39.
    exponent = round_shift(distance * LOG2E_Q24, LOG2E_FRACTION_BITS - EXPONENT_FRACTION_BITS - exponent_in)
    integer_part = (exponent >> EXPONENT_FRACTION_BITS).clamp(max=MAX_EXPONENT_INTEGER_PART)
    coarse_table = torch.tensor(EXP2_COARSE, dtype=torch.int64, device=values.device)
    fine_table = torch.tensor(EXP2_FINE, dtype=torch.int64, device=values.device)
    mantissa = coarse_table[(exponent >> 8) & 255] * fine_table[exponent & 255]  # <= 2^60
    exponentials = round_shift(mantissa, EXP2_TABLE_SCALE_BITS + integer_part)  # E in 0..2^30
    total = exponentials.sum(dim=dim, keepdim=True)  # Z in 2^30..2^46
    return saturate(rounded_divide(exponentials << bits_out, total), bits_out, signed=False)
