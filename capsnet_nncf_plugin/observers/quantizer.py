"""``PowerOfTwoQuantizer``: a calibrated, frozen quantization point (bits, sign, exponent).

Observers decide; a quantizer applies. Quantized modules of every adapter hold these, and
``quantization_points`` reads them, so a bit-width chosen anywhere reaches export through one object.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.ao.quantization.observer import ObserverBase

from capsnet_nncf_plugin.observers.activation_observer import container_dtype, container_zero_point
from capsnet_nncf_plugin.observers.integer_format import check_bits
from capsnet_nncf_plugin.observers.power_of_two import check_exponent, dequantize, fake_quantize, quantize


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

    @classmethod
    def from_observer(cls, observer: ObserverBase) -> PowerOfTwoQuantizer:
        """Freeze a calibrated power-of-two observer (raises CalibrationError if it saw no data)."""
        exponent = observer.exponent
        if isinstance(exponent, torch.Tensor):
            return cls(observer.bits, observer.signed, tuple(int(e) for e in exponent), observer.ch_axis)
        return cls(observer.bits, observer.signed, int(exponent), None)

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

    def to_quantized_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` quantized to this per-tensor format, as a torch quantized tensor.

        The container is the one torch.ao was told about (``quint8`` up to 8 bits, zero point 128 when
        signed; ``qint32`` above), so the tensor carries its format to the next quantized module.
        """
        if self.axis is not None:
            raise ValueError("only per-tensor formats travel as torch quantized tensors")
        on_grid = self.fake_quantize(tensor)
        return torch.quantize_per_tensor(
            on_grid,
            2.0**self.exponent,
            container_zero_point(self.bits, self.signed),
            container_dtype(self.bits),
        )
