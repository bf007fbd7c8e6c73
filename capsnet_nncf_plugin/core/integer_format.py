"""Integer formats, and the one rule that decides which integer container stores each of them.

A power-of-two format is ``(bits, signed)``: integers in :func:`quant_range`, zero point 0, scale
``2**exponent``. Every place that stores such integers - a torch tensor of codes, a torch quantized tensor
between the FX flow's layers, an ONNX initializer or activation, a custom op's output - asks this module
which container holds them, so the choice is made once:

* **container width** (:func:`container_bits`): 8 bits for formats of up to 8 bits, 16 above;
* **codes** (:func:`code_type`, zero point 0): ``INT8``/``UINT8``, or ``INT16``/``UINT16`` above 8 bits;
* **activations between layers** (:func:`transport_encoding`): up to 8 bits always ``UINT8``; a signed
  format is offset by :data:`SIGNED_UINT8_ZERO_POINT` (128), the encoding onnxruntime's fast ``u8 x s8``
  kernels want; above 8 bits the code type;
* **torch quantized tensors** (:func:`carrier_encoding`, the FX flow's carriers): ``UINT8`` as above; above
  8 bits ``INT32`` (torch has no 16-bit quantized dtype), where the zero point tells the sign;
* **weights** (:func:`weight_encoding`): ``INT4`` up to 4 bits (two per byte in ONNX), else the signed
  code type; 5..8-bit weights optionally ``UINT8`` offset by 128 (exact on CPUs without VNNI, see
  docs/export.md).

This module is plain Python (no torch, numpy or onnx): the ONNX domain and the runtime use it on machines
without torch. Each framework maps :class:`IntegerType` to its own dtype with a lookup table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from capsnet_nncf_plugin.errors import ConfigError

#: Narrowest supported integer format: one bit carries no magnitude once a sign or a zero is needed.
MIN_BITS = 2
#: Widest supported integer format: every value fits a float32 mantissa (24 bits) exactly, with room for
#: the products of the integer kernels, and the ONNX export maps it to INT16/UINT16.
MAX_BITS = 16
#: Formats up to this width are stored in 8-bit containers, wider ones in 16-bit containers.
NARROW_CONTAINER_BITS = 8
#: Formats up to this width are stored as packed INT4 when they are weights.
INT4_MAX_BITS = 4
#: The zero point that stores a signed format of up to 8 bits in an unsigned byte.
SIGNED_UINT8_ZERO_POINT = 128


def check_bits(bits: int, argument: str = "bits") -> int:
    """Return ``bits`` if it is an integer in ``MIN_BITS..MAX_BITS``, else raise ``ValueError``."""
    # bool is an int subclass; True as a bit-width is a caller's mistake, not 1 bit.
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ConfigError(
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


class IntegerType(enum.Enum):
    """An integer container: its width in bits and its signedness (value: the numpy-style name)."""

    INT4 = "int4"
    UINT8 = "uint8"
    INT8 = "int8"
    UINT16 = "uint16"
    INT16 = "int16"
    INT32 = "int32"

    @property
    def bits(self) -> int:
        return int(self.value.removeprefix("u").removeprefix("int"))

    @property
    def signed(self) -> bool:
        return not self.value.startswith("u")

    @property
    def range(self) -> tuple[int, int]:
        """The integers the container holds."""
        if self.signed:
            return -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1
        return 0, 2**self.bits - 1


_CODE_TYPES = {
    (8, True): IntegerType.INT8,
    (8, False): IntegerType.UINT8,
    (16, True): IntegerType.INT16,
    (16, False): IntegerType.UINT16,
}


@dataclass(frozen=True)
class Encoding:
    """How a format's integers are stored: ``stored = code + zero_point`` in ``container``."""

    container: IntegerType
    zero_point: int = 0

    def stored_range(self, bits: int, signed: bool) -> tuple[int, int]:
        """The stored values of a ``bits``-wide format: its codes shifted by the zero point."""
        low, high = quant_range(bits, signed)
        return low + self.zero_point, high + self.zero_point


def container_bits(bits: int) -> int:
    """Width of the container that stores a ``bits``-wide format: 8 up to 8 bits, else 16."""
    return NARROW_CONTAINER_BITS if check_bits(bits) <= NARROW_CONTAINER_BITS else 2 * NARROW_CONTAINER_BITS


def code_type(bits: int, signed: bool) -> IntegerType:
    """The container of plain codes (zero point 0): the narrowest of INT8/UINT8/INT16/UINT16 that fits."""
    return _CODE_TYPES[container_bits(bits), bool(signed)]


def transport_encoding(bits: int, signed: bool) -> Encoding:
    """How an activation travels between layers of an exported model (module doc)."""
    if container_bits(bits) == NARROW_CONTAINER_BITS:
        return Encoding(IntegerType.UINT8, SIGNED_UINT8_ZERO_POINT if signed else 0)
    return Encoding(code_type(bits, signed))


def carrier_encoding(bits: int, signed: bool) -> Encoding:
    """How a torch quantized tensor carries a format between the FX flow's quantized modules.

    Up to 8 bits as :func:`transport_encoding`. Above, ``INT32`` (torch's only wider quantized dtype), where
    the zero point marks the sign as the 128 does in a byte: 0 for signed formats, ``-2**(bits-1)`` for
    unsigned ones (their codes ``0..2**bits-1`` are then stored centred).
    """
    if container_bits(bits) == NARROW_CONTAINER_BITS:
        return transport_encoding(bits, signed)
    return Encoding(IntegerType.INT32, 0 if signed else -(2 ** (bits - 1)))


def signed_from_carrier(container: IntegerType, zero_point: int) -> bool:
    """Inverse of :func:`carrier_encoding` for the sign: read it back from a stored tensor's encoding."""
    if container == IntegerType.UINT8:
        return zero_point != 0
    return zero_point == 0


def weight_encoding(bits: int, unsigned: bool = False) -> Encoding:
    """How weight codes are stored: ``INT4`` up to 4 bits, else signed codes; with ``unsigned``, 5..8-bit
    weights as ``UINT8`` with zero point 128 (module doc)."""
    if check_bits(bits) <= INT4_MAX_BITS:
        return Encoding(IntegerType.INT4)
    if unsigned and container_bits(bits) == NARROW_CONTAINER_BITS:
        return Encoding(IntegerType.UINT8, SIGNED_UINT8_ZERO_POINT)
    return Encoding(code_type(bits, signed=True))
