"""``PowerOfTwoActivationObserver``: a per-tensor observer whose signedness follows the data.

An activation observer built from a qconfig watches several tensors (a layer's input and its output) that
may differ in sign: pixels and ReLU outputs are non-negative, pre-activations and capsule poses are not.
Spending the sign bit only where negative values were seen buys one bit of resolution everywhere else.

To torch.ao it reports a container wide enough for either sign: ``quint8`` up to 8 bits (a signed tensor
then has zero point 128, as onnxruntime's fast uint8 kernels want) and ``qint32`` above. The narrower
range of the actual format is applied by the plugin's quantized modules, not by torch's quantize op.
"""

from __future__ import annotations

from typing import Any

import torch

from capsnet_nncf_plugin.core.arithmetic import power_of_two
from capsnet_nncf_plugin.core.integer_format import carrier_encoding, quant_range
from capsnet_nncf_plugin.core.torch_types import TORCH_QUANTIZED_DTYPES
from capsnet_nncf_plugin.observers.observer import PowerOfTwoObserver


def container_dtype(bits: int) -> torch.dtype:
    """The torch.ao dtype that holds a ``bits``-wide format of either sign (its carrier's container)."""
    return TORCH_QUANTIZED_DTYPES[carrier_encoding(bits, signed=True).container]


def container_zero_point(bits: int, signed: bool) -> int:
    """Zero point that places a ``bits``-wide format inside its container and tells its sign
    (:func:`~capsnet_nncf_plugin.core.integer_format.carrier_encoding`)."""
    return carrier_encoding(bits, signed).zero_point


class PowerOfTwoActivationObserver(PowerOfTwoObserver):
    """Per-tensor power-of-two observer; signed if and only if a negative value was observed.

    Args are those of :class:`PowerOfTwoObserver` except ``signed`` (decided by the data) and ``dtype``
    (the container, see the module doc). ``bits`` is the width of the actual format. ``routing`` carries
    the routing-tensor bit-widths of the layer this observer's qconfig configures: torch.ao rebuilds
    QConfig objects during prepare, so the observer constructor is the one place a per-layer setting
    reaches the plugin's observed routing modules through. The observer itself does not use it.
    """

    def __init__(self, bits: int = 8, clip: str = "hardware", routing: Any = None, **kwargs: Any) -> None:
        for argument in ("signed", "dtype", "ch_axis"):
            if argument in kwargs:
                raise ValueError(f"PowerOfTwoActivationObserver chooses {argument} itself; do not pass it")
        super().__init__(bits=bits, signed=False, clip=clip, dtype=container_dtype(bits), **kwargs)
        self.routing = routing

    def set_bits(self, bits: int) -> None:
        super().set_bits(bits)
        self.dtype = container_dtype(bits)

    def _exponents(self) -> torch.Tensor:
        if int(self.batches_seen) > 0:
            signed = bool(self.min_val.min() < 0)
            if signed != self.signed:
                self.signed = signed
                self.quant_min, self.quant_max = quant_range(self.bits, signed)
                self._cached_exponents = None
        return super()._exponents()

    def calculate_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        exponents = self._exponents()
        zero_point = container_zero_point(self.bits, self.signed)
        return power_of_two(exponents), torch.full_like(exponents, zero_point, dtype=torch.int64)
