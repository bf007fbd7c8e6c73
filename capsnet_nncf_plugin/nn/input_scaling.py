"""A power-of-two input scale, so that models take raw pixels and quantize them losslessly."""

from __future__ import annotations

import torch
from torch import nn


class PixelScale(nn.Module):
    """Multiplies by ``2**-shift``: raw 8-bit pixels (0..255) become values in [0, 1).

    Because the factor is a power of two, an 8-bit unsigned input quantizer with scale 1 followed by this
    module is a pure shift: the integer model sees the exact pixel values and needs no preprocessing.
    """

    def __init__(self, shift: int = 8) -> None:
        super().__init__()
        if not 0 <= shift <= 16:
            raise ValueError(f"PixelScale shift must be in 0..16, got {shift}")
        self.shift = shift

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images * (2.0**-self.shift)

    def extra_repr(self) -> str:
        return f"shift={self.shift}"
