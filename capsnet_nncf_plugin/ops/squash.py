"""Integer squash: ``v = s * |s| / (1 + |s|^2)`` on power-of-two quantized capsules, bit-exact.

Input ``s`` has exponent ``e`` (value ``s * 2^e``); the output has ``bits_out`` signed bits and the fixed
exponent ``-(bits_out - 1)``, because every squash output component lies in (-1, 1). With ``N2 = sum s_d^2``
and ``K = bits_out - 1`` the exact result in output units is the rational-with-a-root

    V_d = s_d * sqrt(N2) * 2^K / (2^(-2e) + N2)              (e <= 0)
        = s_d * sqrt(N2) * 2^K * 2^(2e) / (1 + N2 * 2^(2e))  (e > 0, same value multiplied through)

The root is replaced by ``R / 2^F`` with ``R = isqrt(N2 * 4^F)`` and ``F`` chosen per capsule so that ``R``
has 31 bits (``2^30 <= R < 2^31``): a relative error below 2^-30 whatever the magnitude of ``s``, so
``V`` is the exactly rounded result except within 2^-15 LSB of a rounding tie. One rounding (half away
from zero) and a saturation follow. docs/integer-ops.md derives the bounds.
"""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.core.integer_format import check_bits
from capsnet_nncf_plugin.ops.fixed_point import bit_length, saturate
from capsnet_nncf_plugin.ops.integer_sqrt import integer_sqrt
from capsnet_nncf_plugin.ops.operands import (
    check_exponent,
    check_integer_dtype,
    check_integer_tensor,
    storage_dtype,
)

#: Largest capsule dimension: with 16-bit inputs ``N2 <= 64 * 2^30 = 2^36``, the bound every other limit of
#: the op is derived from. ShallowCaps uses 16, DeepCaps 8 and 32.
MAX_CAPSULE_DIM = 64
#: Widest input: ``|s| <= 2^15``.
SQUASH_INPUT_BITS = 16
#: ``N2 * 4^F`` is normalised into ``[2^60, 2^62)``, so ``F = (62 - bit_length(N2)) >> 1``.
NORMALISED_SQUARE_BITS = 62


def check_squash_arguments(s: torch.Tensor, exponent_in: int, bits_out: int, dim: int) -> int:
    """Validate everything but the values of ``s``; return ``dim`` as a non-negative index."""
    check_integer_dtype(s, "s")
    check_exponent(exponent_in, "exponent_in")
    check_bits(bits_out, "bits_out")
    if s.dim() == 0:
        raise ValueError("s is a scalar; squash needs a capsule dimension (pass a tensor [..., D])")
    if isinstance(dim, bool) or not isinstance(dim, int) or not -s.dim() <= dim < s.dim():
        raise ValueError(f"dim={dim!r} is not a dimension of s with shape {tuple(s.shape)}")
    dim %= s.dim()
    capsule_dim = s.shape[dim]
    if isinstance(capsule_dim, int) and not 1 <= capsule_dim <= MAX_CAPSULE_DIM:
        raise ValueError(
            f"s has capsule dimension {capsule_dim} along dim={dim}; int_squash supports "
            f"1..{MAX_CAPSULE_DIM} (the bound that keeps |s|^2 within 2^36); squash along the capsule dim"
        )
    return dim


def int_squash(s: torch.Tensor, exponent_in: int, bits_out: int, dim: int = -1) -> torch.Tensor:
    """Squash quantized capsules ``s`` (value ``s * 2^exponent_in``) along ``dim``, in integers.

    ``s``: int8/int16/int32/int64 values in ``[-2^15, 2^15 - 1]``; ``exponent_in`` in ``-31..6``;
    ``bits_out`` in ``2..16``; the capsule dimension at most 64. Returns the signed ``bits_out``-bit result
    with exponent ``-(bits_out - 1)`` as int8 (``bits_out <= 8``) or int16, same shape as ``s``. Raises
    ``ValueError`` naming the argument when any of these does not hold.
    """
    dim = check_squash_arguments(s, exponent_in, bits_out, dim)
    values = check_integer_tensor(s, "s", SQUASH_INPUT_BITS)
    return squash_int64(values, exponent_in, bits_out, dim).to(storage_dtype(bits_out, signed=True))


def squash_int64(values: torch.Tensor, exponent_in: int, bits_out: int, dim: int) -> torch.Tensor:
    """The arithmetic of :func:`int_squash` on already validated int64 values; returns int64."""
    fraction_bits_out = bits_out - 1  # K
    magnitudes = values.abs()
    squared_norm = (magnitudes * magnitudes).sum(dim=dim, keepdim=True)  # N2 <= 2^36
    # F = (62 - L) >> 1 puts N2 * 4^F in [2^60, 2^62): a 31-bit root whatever the magnitude. N2 = 0 gives
    # F = 31 and R = 0, hence V = 0 without a special case.
    root_fraction_bits = (NORMALISED_SQUARE_BITS - bit_length(squared_norm)) >> 1  # F in 12..31
    root = integer_sqrt(squared_norm << (2 * root_fraction_bits))  # R < 2^31
    if exponent_in <= 0:
        denominator = (1 << (-2 * exponent_in)) + squared_norm  # A = 4^m + N2 < 2^62 + 2^36
        input_scale_bits = 0
    else:
        denominator = 1 + (squared_norm << (2 * exponent_in))  # A = 1 + N2 * 4^e <= 1 + 2^48
        input_scale_bits = 2 * exponent_in
    # V = |s_d| * R * 2^c / A with c = K + 2 max(e, 0) - F, one rounding half away from zero:
    # floor(2 |s_d| R 2^max(c,0) / A) + 2^r, shifted right by r + 1, where r = max(-c, 0) is what the
    # division leaves to a shift. Everything but the per-component multiply and divide is per capsule
    # (the squash runs on every capsule of every DeepCaps cell, so full-size int64 passes are its cost);
    # 2 |s_d| R 2^max(c,0) < 2 * 2^15 * 2^31 * 2^15 = 2^62 since c <= 15.
    scale_exponent = fraction_bits_out + input_scale_bits - root_fraction_bits
    remaining_shift = (-scale_exponent).clamp(min=0)
    doubled_factor = root << (scale_exponent.clamp(min=0) + 1)
    doubled_quotient = torch.div(magnitudes * doubled_factor, denominator, rounding_mode="floor")
    magnitude = (doubled_quotient + (1 << remaining_shift)) >> (remaining_shift + 1)
    return saturate(torch.where(values < 0, -magnitude, magnitude), bits_out, signed=True)
