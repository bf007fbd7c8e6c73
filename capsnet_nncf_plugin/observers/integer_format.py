"""The integer formats a power-of-two quantizer targets: bit-width, signedness and their integer range."""

from __future__ import annotations

#: Narrowest supported integer format: one bit carries no magnitude once a sign or a zero is needed.
MIN_BITS = 2
#: Widest supported integer format: every value fits a float32 mantissa (24 bits) exactly, with room for
#: the products of the integer kernels, and the later ONNX export maps it to INT16/UINT16.
MAX_BITS = 16


def check_bits(bits: int, argument: str = "bits") -> int:
    """Return ``bits`` if it is an integer in ``MIN_BITS..MAX_BITS``, else raise ``ValueError``."""
    # bool is an int subclass; True as a bit-width is a caller's mistake, not 1 bit.
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(
            f"{argument} must be an integer in {MIN_BITS}..{MAX_BITS}, got {bits!r}; "
            f"pick a bit-width in that range"
        )
    return bits


def quant_range(bits: int, signed: bool) -> tuple[int, int]:
    """Integer range ``(qmin, qmax)`` of a ``bits``-wide format.

    Signed formats are two's complement, ``[-2**(bits-1), 2**(bits-1) - 1]``; unsigned formats are
    ``[0, 2**bits - 1]``. The zero point is always 0, so these bounds are the representable multiples of the
    scale.
    """
    check_bits(bits)
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1
