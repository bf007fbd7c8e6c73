"""``freeze``: a calibrated observer as the integer model's frozen quantizer."""

from __future__ import annotations

from typing import Protocol

import torch

from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer


class CalibratedObserver(Protocol):
    """What a power-of-two observer of any adapter offers once calibrated."""

    bits: int
    signed: bool
    ch_axis: int | None

    @property
    def exponent(self) -> int | torch.Tensor: ...


def freeze(observer: CalibratedObserver) -> PowerOfTwoQuantizer:
    """The quantizer a calibrated observer decided (raises ``CalibrationError`` if it saw no data)."""
    exponent = observer.exponent
    if isinstance(exponent, torch.Tensor):
        return PowerOfTwoQuantizer(
            observer.bits, observer.signed, tuple(int(e) for e in exponent), observer.ch_axis
        )
    return PowerOfTwoQuantizer(observer.bits, observer.signed, int(exponent), None)
