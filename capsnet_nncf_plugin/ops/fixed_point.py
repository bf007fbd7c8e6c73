"""Fixed-point primitives on int64 tensors: rounding shifts, rounding division, saturation.

Every rounding in the integer ops rounds half away from zero (``2.5 -> 3``, ``-2.5 -> -3``). That differs on
purpose from QuantizeLinear's half-to-even: it is what ``(|x| + 2^(n-1)) >> n`` computes, which is exact and
cheap in int64 in torch and in C++ alike. Callers guarantee ``|x| < 2^62`` (``operands.INT64_BOUND``) so
that no rounding constant or doubled remainder overflows.
"""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.core.integer_format import quant_range

Shift = int | torch.Tensor

#: Largest shift amount the primitives accept: with ``|x| < 2^62`` a right shift by 62 is already 0 or ±1,
#: and C++ leaves shifts by 64 or more undefined.
MAX_SHIFT = 62


def saturate(values: torch.Tensor, bits: int, signed: bool) -> torch.Tensor:
    """Clamp ``values`` to the ``bits``-wide signed or unsigned range (the one overflow rule of the ops)."""
    low, high = quant_range(bits, signed)
    return values.clamp(low, high)


def _check_shift(shift: Shift) -> None:
    if isinstance(shift, torch.Tensor):
        if shift.numel() == 0:
            return
        low, high = (int(value) for value in torch.aminmax(shift))
    else:
        low = high = shift
    if low < -MAX_SHIFT or high > MAX_SHIFT:
        raise ValueError(f"shift must be in -{MAX_SHIFT}..{MAX_SHIFT}, got values in {low}..{high}")


def round_shift(values: torch.Tensor, shift: Shift) -> torch.Tensor:
    """``values * 2^-shift``: a right shift rounding half away from zero for ``shift > 0``, else exact.

    ``shift`` is an int or an int64 tensor broadcasting against ``values`` (per-element shifts mix both
    directions). A left shift is exact; the caller guarantees the result stays below 2^62.
    """
    _check_shift(shift)
    if isinstance(shift, int):
        if shift <= 0:
            return values << -shift
        magnitude = (values.abs() + (1 << (shift - 1))) >> shift
        return torch.where(values < 0, -magnitude, magnitude)
    right = shift.clamp(min=0)
    shifted = values << (-shift).clamp(min=0)
    # (1 << right) >> 1 is 2^(right-1) for right >= 1 and 0 for right == 0: no rounding when nothing is cut.
    magnitude = (shifted.abs() + ((1 << right) >> 1)) >> right
    return torch.where(shifted < 0, -magnitude, magnitude)


def rounded_divide(
    numerator: torch.Tensor, denominator: torch.Tensor | int, shift: Shift = 0
) -> torch.Tensor:
    """``numerator / (denominator * 2^shift)`` rounded half away from zero, exactly, in one rounding.

    ``denominator > 0``, ``shift >= 0`` and ``|numerator| < 2^62``. Computed as
    ``(floor(2|n| / d) + 2^shift) >> (shift + 1)`` with the sign of ``n``: by the nested-floor identity
    ``floor(floor(a) / m) = floor(a / m)`` this is ``floor(|n| / (d 2^shift) + 1/2)``, the exact rounding.
    """
    _check_shift(shift)
    magnitude = numerator.abs()
    doubled_quotient = torch.div(2 * magnitude, denominator, rounding_mode="floor")
    rounded = (doubled_quotient + (1 << shift)) >> (shift + 1)
    return torch.where(numerator < 0, -rounded, rounded)


def requantize(values: torch.Tensor, shift: Shift, bits: int, signed: bool) -> torch.Tensor:
    """Move ``values`` to an exponent ``shift`` larger (rounding) and saturate to ``bits``: a rescale."""
    return saturate(round_shift(values, shift), bits, signed)


def bit_length(values: torch.Tensor) -> torch.Tensor:
    """Number of bits of each non-negative int64 value (0 for 0), like Python's ``int.bit_length``.

    Integer-only: the count of powers of two ``2^0..2^62`` that are ``<= value``.
    """
    powers = torch.tensor([1 << exponent for exponent in range(63)], dtype=torch.int64, device=values.device)
    return torch.searchsorted(powers, values.contiguous(), right=True)
