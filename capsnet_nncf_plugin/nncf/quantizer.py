"""A power-of-two symmetric quantizer for NNCF: NNCF's range, the plugin's rounding.

NNCF's ``SymmetricQuantizer`` keeps ``scale`` = the top of the range, with a step of
``scale / level_high``. This subclass keeps NNCF's calibrated range as its parameter but reads the step as
the power of two that covers it (the ``minmax`` rule of :mod:`capsnet_nncf_plugin.core.clipping`), and
quantizes with the plugin's own plain-torch kernel, so NNCF needs no compiled extension and every value
agrees with the FX flow's quantizers bit for bit.
"""

from __future__ import annotations

import torch
from nncf.common.quantization.structs import QuantizationScheme
from nncf.torch.quantization.layers import QUANTIZATION_MODULES, SymmetricQuantizer

from capsnet_nncf_plugin.observers import fake_quantize, minmax_exponent


class PowerOfTwoSymmetricQuantizer(SymmetricQuantizer):
    """``SymmetricQuantizer`` whose step is ``2**exponent``; ``exponents`` gives the exponent per channel."""

    @property
    def range_max(self) -> torch.Tensor:
        """NNCF's calibrated top of the range (before power-of-two rounding)."""
        return SymmetricQuantizer.scale.fget(self)

    def exponents(self) -> torch.Tensor:
        """One int32 exponent per scale element: the smallest power-of-two step covering the range.

        Cached until the range, the width or the sign changes: NNCF runs the model many times (statistics,
        bias correction) and the per-channel rule is a Python loop.
        """
        storage = self._scale_param_storage
        key = (storage.data_ptr(), storage._version, self.num_bits, self.signed)
        if getattr(self, "_exponent_cache", (None,))[0] != key:
            flat = self.range_max.detach().abs().reshape(-1).tolist()
            low = -1.0 if self.signed else 0.0
            values = [minmax_exponent(low * top, top, self.num_bits, self.signed) for top in flat]
            self._exponent_cache = (key, torch.tensor(values, dtype=torch.int32))
        return self._exponent_cache[1]

    @property
    def scale(self) -> torch.Tensor:
        steps = torch.pow(2.0, self.exponents().to(torch.float64)).to(torch.float32)
        return (steps * self.level_high).reshape(self.scale_shape).to(self.range_max.device)

    @scale.setter
    def scale(self, value: torch.Tensor) -> None:
        SymmetricQuantizer.scale.fset(self, value)

    def _channel_axis(self) -> int | None:
        wide = [axis for axis, size in enumerate(self.scale_shape) if size > 1]
        return wide[0] if wide else None

    def quantize(self, x: torch.Tensor, execute_traced_op_as_identity: bool = False) -> torch.Tensor:
        if execute_traced_op_as_identity:
            return x
        exponents = self.exponents().to(x.device)
        axis = self._channel_axis()
        exponent = exponents if axis is not None else int(exponents[0])
        return fake_quantize(x, exponent, self.num_bits, self.signed, axis)


def use_power_of_two_quantizers() -> PowerOfTwoQuantizerScope:
    """Context manager: NNCF builds its symmetric quantizers as ``PowerOfTwoSymmetricQuantizer``."""
    return PowerOfTwoQuantizerScope()


class PowerOfTwoQuantizerScope:
    """Swaps the class NNCF's registry returns for symmetric quantization, and swaps it back on exit."""

    def __enter__(self) -> PowerOfTwoQuantizerScope:
        registry = QUANTIZATION_MODULES.registry_dict
        self._previous = registry[QuantizationScheme.SYMMETRIC]
        registry[QuantizationScheme.SYMMETRIC] = PowerOfTwoSymmetricQuantizer
        return self

    def __exit__(self, *exc_info: object) -> None:
        QUANTIZATION_MODULES.registry_dict[QuantizationScheme.SYMMETRIC] = self._previous
