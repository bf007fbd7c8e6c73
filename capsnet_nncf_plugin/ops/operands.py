"""The ops' contract on their operands: which integer tensors, bit-widths and exponents they accept.

Every limit here exists to keep the int64 arithmetic of the integer ops provably free of overflow (see
docs/integer-ops.md, "Bounds"); the C++ kernels check the same limits and fail the same way.
"""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.core.integer_format import IntegerType, code_type, quant_range
from capsnet_nncf_plugin.core.torch_types import torch_dtype

#: Smallest exponent an op accepts. It keeps ``2^(2 * 31) + |s|^2`` inside int64 in ``int_squash``.
MIN_OP_EXPONENT = -31
#: Largest exponent an op accepts. It keeps ``int_squash``'s numerator ``|s| * R * 2^c`` below 2^61 and every
#: shift in ``int_softmax`` a right shift; real capsule activations never need coarser scales.
MAX_OP_EXPONENT = 6
#: Every intermediate of every op stays strictly below this magnitude, so adding a rounding constant or
#: doubling a remainder can never overflow a signed 64-bit integer.
INT64_BOUND = 1 << 62

#: Tensor dtypes an op reads integer operands from; values are checked against the declared bit range.
INTEGER_INPUT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64)


def check_exponent(exponent: int, argument: str) -> int:
    """Return ``exponent`` if it is an integer in ``MIN_OP_EXPONENT..MAX_OP_EXPONENT``, else raise."""
    if isinstance(exponent, bool) or not isinstance(exponent, int):
        raise ValueError(f"{argument} must be an int (the power of two of the scale), got {exponent!r}")
    if not MIN_OP_EXPONENT <= exponent <= MAX_OP_EXPONENT:
        raise ValueError(
            f"{argument}={exponent} is outside the supported {MIN_OP_EXPONENT}..{MAX_OP_EXPONENT}, where the "
            f"int64 arithmetic is proven not to overflow; recalibrate so the scale 2^{argument} lies in it"
        )
    return exponent


def signed_range(bits: int) -> tuple[int, int]:
    """``(qmin, qmax)`` of a two's complement ``bits``-wide integer."""
    return quant_range(bits, signed=True)


def check_integer_values(tensor: torch.Tensor, argument: str, bits: int) -> None:
    """Check that ``tensor`` has an integer dtype and values within the signed ``bits``-bit range.

    The value check reads the data, so fake-tensor kernels call :func:`check_integer_dtype` instead.
    """
    check_integer_dtype(tensor, argument)
    if tensor.numel() > 0:
        low, high = signed_range(bits)
        smallest, largest = (int(value) for value in torch.aminmax(tensor))
        if smallest < low or largest > high:
            raise ValueError(
                f"{argument} holds values in {smallest}..{largest}, outside the signed {bits}-bit range "
                f"{low}..{high} the op is declared for; saturate it to that range or declare more bits"
            )


def check_integer_tensor(tensor: torch.Tensor, argument: str, bits: int) -> torch.Tensor:
    """:func:`check_integer_values`, then the values as int64, the one dtype every op computes in."""
    check_integer_values(tensor, argument, bits)
    return tensor.to(torch.int64)


def check_integer_dtype(tensor: torch.Tensor, argument: str) -> None:
    """Raise ``ValueError`` unless ``tensor`` is a tensor of a signed integer dtype."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{argument} must be a torch.Tensor of integers, got {type(tensor).__name__}")
    if tensor.dtype not in INTEGER_INPUT_DTYPES:
        names = ", ".join(str(dtype).removeprefix("torch.") for dtype in INTEGER_INPUT_DTYPES)
        raise ValueError(
            f"{argument} has dtype {tensor.dtype}; the integer ops take quantized integers ({names}), "
            f"not floats: quantize with the power-of-two exponent first"
        )


def storage_dtype(bits: int, signed: bool) -> torch.dtype:
    """The torch dtype the ops return a ``bits``-wide result in: the container of
    :func:`~capsnet_nncf_plugin.core.integer_format.code_type`, except that unsigned 9..16-bit results come
    as int32, because torch's uint16 supports almost no operations."""
    container = code_type(bits, signed)
    return torch.int32 if container == IntegerType.UINT16 else torch_dtype(container)
