"""``FixedRangeObserver``: a power-of-two scale decided by a range known a priori, not by calibration data.

For routing's coupling coefficients (a softmax, in [0, 1]) and squash outputs (components in (-1, 1)):
calibrating them would only let one batch's extremes shrink the range. It derives from torch's
``FixedQParamsObserver``, so torch.ao treats it as a fixed-qparams observer; an 8-bit unsigned [0, 1] range
gives scale 2**-8 and zero point 0, exactly what the native BackendConfig demands for softmax.
"""

from __future__ import annotations

import torch
from torch.ao.quantization.observer import FixedQParamsObserver

from capsnet_nncf_plugin.core.arithmetic import power_of_two
from capsnet_nncf_plugin.core.fixed_ranges import fixed_exponent_for_range
from capsnet_nncf_plugin.core.integer_format import quant_range
from capsnet_nncf_plugin.observers.observer import check_finite
from capsnet_nncf_plugin.observers.torch_ao_dtype import check_dtype_holds_format, torch_ao_dtype


class FixedRangeObserver(FixedQParamsObserver):
    """Returns the ``hardware`` exponent of ``[0, max_abs]`` (unsigned) or ``[-max_abs, max_abs]`` (signed).

    The data does not move the scale, but every batch is still checked: NaN or infinite values raise
    :class:`.errors.CalibrationError`. Its qparams are available before any data.

    Args:
        bits: integer width, 2..16.
        signed: whether the tensor can be negative.
        max_abs: the largest magnitude the tensor can take (1.0 for coupling coefficients and squash).
        name: shown in error messages.
        dtype: the dtype reported to torch.ao; by default :func:`.torch_ao_dtype.torch_ao_dtype`.
        is_dynamic: must be False; present because torch.ao passes it.
    """

    def __init__(
        self,
        bits: int = 8,
        signed: bool = False,
        max_abs: float = 1.0,
        name: str | None = None,
        dtype: torch.dtype | None = None,
        is_dynamic: bool = False,
    ) -> None:
        quant_min, quant_max = quant_range(bits, signed)
        if is_dynamic:
            raise ValueError("power-of-two observers are for static quantization; pass is_dynamic=False")
        exponent = fixed_exponent_for_range(max_abs, bits, signed)
        super().__init__(
            scale=float(power_of_two(exponent)),
            zero_point=0,
            dtype=check_dtype_holds_format(dtype or torch_ao_dtype(bits, signed), bits, signed),
            qscheme=torch.per_tensor_symmetric,
            quant_min=quant_min,
            quant_max=quant_max,
        )
        self.bits = bits
        self.signed = bool(signed)
        self.max_abs = float(max_abs)
        self.name = name
        self.ch_axis = None

    @property
    def per_channel(self) -> bool:
        """Always False: a fixed range is one range for the whole tensor."""
        return False

    @property
    def exponent(self) -> int:
        """The fixed exponent, read back from the ``scale`` buffer so a loaded state dict is honoured."""
        mantissa, exponent = torch.frexp(self.scale)
        # frexp writes 2**e as 0.5 * 2**(e+1); anything else is a scale that was never a power of two.
        if float(mantissa[0]) != 0.5:
            raise ValueError(f"scale {float(self.scale[0])} is not a power of two; the state dict is corrupt")
        return int(exponent[0]) - 1

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Check that ``X`` is finite and return it unchanged."""
        check_finite(X.detach(), self.name)
        return X

    def extra_repr(self) -> str:
        described = f"bits={self.bits}, signed={self.signed}, max_abs={self.max_abs}"
        return described + f", exponent={self.exponent}" + (f", name={self.name!r}" if self.name else "")
