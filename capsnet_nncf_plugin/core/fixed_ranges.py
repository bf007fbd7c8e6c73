"""Exponents for tensors whose range is known before calibration, such as the quantities inside routing.

Calibrating them would only add noise: a softmax output never exceeds 1 however the batch looks. Each uses
the ``hardware`` rule (the format's natural power-of-two span covers the known range).
"""

from __future__ import annotations

from capsnet_nncf_plugin.core.clipping import hardware_exponent
from capsnet_nncf_plugin.core.integer_format import check_bits
from capsnet_nncf_plugin.core.real_numbers import is_finite_number

#: Coupling coefficients are a softmax over the output capsules: every value is in [0, 1].
COUPLING_COEFFICIENT_MAX = 1.0
#: Squash maps a capsule's norm n to n^2 / (1 + n^2) < 1, so every component is in (-1, 1).
SQUASH_OUTPUT_MAX_ABS = 1.0


def fixed_exponent_for_range(max_abs: float, bits: int, signed: bool) -> int:
    """The ``hardware`` exponent of a range known a priori: ``[0, max_abs]`` or ``[-max_abs, max_abs]``.

    ``e = ceil(log2(max_abs)) - bits`` (unsigned) or ``- (bits - 1)`` (signed).
    """
    check_bits(bits)
    if not is_finite_number(max_abs):
        raise ValueError(f"max_abs must be a finite number > 0, got {max_abs!r}")
    if max_abs <= 0:
        raise ValueError(f"max_abs must be > 0 (the largest magnitude the tensor can take), got {max_abs}")
    return hardware_exponent(-max_abs if signed else 0.0, float(max_abs), bits, signed)


def coupling_coefficient_exponent(bits: int) -> int:
    """Unsigned exponent for routing's coupling coefficients, in [0, 1]: ``-bits`` (8 bits -> 2**-8)."""
    return fixed_exponent_for_range(COUPLING_COEFFICIENT_MAX, bits, signed=False)


def squash_output_exponent(bits: int) -> int:
    """Signed exponent for squash outputs, each component in (-1, 1): ``-(bits - 1)`` (8 bits -> 2**-7)."""
    return fixed_exponent_for_range(SQUASH_OUTPUT_MAX_ABS, bits, signed=True)
