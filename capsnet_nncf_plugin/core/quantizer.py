"""``PowerOfTwoQuantizer``: a calibrated, frozen quantization point (bits, sign, exponent).

Observers decide; a quantizer applies. The quantized modules of the integer model hold these, and
``quantization_points`` reads them, so a bit-width chosen anywhere reaches export through one object.
Observers of every adapter freeze into one (``observers.freeze``), so this module knows no framework.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from capsnet_nncf_plugin.core.arithmetic import check_exponent, dequantize, fake_quantize, quantize
from capsnet_nncf_plugin.core.integer_format import check_bits


@dataclass(frozen=True)
class PowerOfTwoQuantizer:
    """``bits``-wide, ``signed`` integers with scale ``2**exponent`` (one exponent per slice of ``axis``)."""

    bits: int
    signed: bool
    exponent: int | tuple[int, ...]
    axis: int | None = None

    def __post_init__(self) -> None:
        check_bits(self.bits)
        if isinstance(self.exponent, tuple):
            if self.axis is None:
                raise ValueError("a per-channel quantizer (a tuple of exponents) needs an axis")
            check_exponent(torch.tensor(self.exponent))
        else:
            check_exponent(self.exponent)

    def _exponent_argument(self) -> int | torch.Tensor:
        return (
            torch.tensor(self.exponent, dtype=torch.int32)
            if isinstance(self.exponent, tuple)
            else self.exponent
        )

    def fake_quantize(self, tensor: torch.Tensor) -> torch.Tensor:
        return fake_quantize(tensor, self._exponent_argument(), self.bits, self.signed, self.axis)

    def quantize(self, tensor: torch.Tensor) -> torch.Tensor:
        """Integer codes as an int64 tensor."""
        return quantize(tensor, self._exponent_argument(), self.bits, self.signed, self.axis).to(torch.int64)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        return dequantize(codes, self._exponent_argument(), self.axis)

    @property
    def levels(self) -> int:
        return 2**self.bits
