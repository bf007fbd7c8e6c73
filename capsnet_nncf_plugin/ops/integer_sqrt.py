"""Exact integer square root, ``floor(sqrt(x))``, vectorised over int64 tensors.

The result is defined by the integers alone, so any exact method reproduces it (C++ may use the same float
estimate and correction, or a bitwise method). This one takes a float64 estimate and corrects it by one
step in each direction, which is provably enough for ``0 <= x < 2^62``:

- ``float64(x)`` and ``sqrt`` each round once to nearest, a relative error of at most ``2^-53`` each, so the
  estimate is ``sqrt(x) * (1 + d)`` with ``|d| < 2^-52``. With ``sqrt(x) < 2^31`` its absolute error is
  below ``2^-21 < 1``, so ``floor(estimate)`` is ``r - 1``, ``r`` or ``r + 1`` for the true ``r``.
- One "``r^2 > x``: decrement" step then one "``(r+1)^2 <= x``: increment" step land on ``r`` from any of
  the three; every square stays below ``(2^31 + 1)^2 < 2^63``.
"""

from __future__ import annotations

import torch

#: Exclusive upper bound of the inputs: the largest square root is below 2^31, so ``(r + 1)^2`` fits int64.
INTEGER_SQRT_BOUND = 1 << 62


def integer_sqrt(values: torch.Tensor) -> torch.Tensor:
    """``floor(sqrt(values))`` for an int64 tensor with ``0 <= values < 2^62``, exactly."""
    if values.dtype != torch.int64:
        raise ValueError(f"integer_sqrt needs an int64 tensor, got {values.dtype}; convert with .long()")
    if values.numel() > 0:
        smallest, largest = (int(value) for value in torch.aminmax(values))
        if smallest < 0 or largest >= INTEGER_SQRT_BOUND:
            raise ValueError(
                f"integer_sqrt needs values in 0..2^62-1, got {smallest}..{largest}; the squares of larger "
                f"roots do not fit int64"
            )
    root = torch.sqrt(values.to(torch.float64)).floor().to(torch.int64)
    root = root - (root * root > values).to(torch.int64)
    return root + ((root + 1) * (root + 1) <= values).to(torch.int64)
