"""``PowerOfTwoFakeQuantize``: a torch.ao fake-quantize module that applies the core PoT arithmetic.

torch's own ``FakeQuantize`` would work with the observers too, but this one fake-quantizes with
:func:`.power_of_two.fake_quantize`, the definition every backend must match, so a prepared model simulates
exactly what the integer model computes - including sub-8-bit ranges inside a ``quint8``/``qint8`` dtype.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.ao.quantization.fake_quantize import FakeQuantizeBase

from capsnet_nncf_plugin.core.arithmetic import fake_quantize, power_of_two
from capsnet_nncf_plugin.observers.fixed_range_observer import FixedRangeObserver
from capsnet_nncf_plugin.observers.observer import PowerOfTwoObserver


class PowerOfTwoFakeQuantize(FakeQuantizeBase):
    """Observes (while the observer is enabled) and fake-quantizes (while fake quant is enabled).

    Like torch's ``FakeQuantize``: ``enable_observer``/``disable_observer``, ``enable_fake_quant``/
    ``disable_fake_quant``, ``calculate_qparams``, ``with_args``. While observing, each batch is
    fake-quantized with the exponent that includes that batch. Fake quantization has no gradient (it is for
    post-training quantization).

    Args:
        observer: a :class:`.observer.PowerOfTwoObserver` or :class:`.fixed_range_observer.FixedRangeObserver`
            class or ``with_args`` constructor.
        **observer_kwargs: passed to ``observer``.
    """

    calibrated_exponent: torch.Tensor

    def __init__(self, observer: Any = PowerOfTwoObserver, **observer_kwargs: Any) -> None:
        super().__init__()
        self.activation_post_process = observer(**observer_kwargs)
        observer_module = self.activation_post_process
        if not isinstance(observer_module, (PowerOfTwoObserver, FixedRangeObserver)):
            raise TypeError(
                f"PowerOfTwoFakeQuantize needs a power-of-two observer (PowerOfTwoObserver or "
                f"FixedRangeObserver), got {type(observer_module).__name__}"
            )
        self.bits = observer_module.bits
        self.signed = observer_module.signed
        self.dtype = observer_module.dtype
        self.qscheme = observer_module.qscheme
        self.quant_min = observer_module.quant_min
        self.quant_max = observer_module.quant_max
        self.is_dynamic = False
        self.is_per_channel = observer_module.per_channel
        self.ch_axis = observer_module.ch_axis if self.is_per_channel else -1
        # Empty until calibrated: the exponent this module applies, shape [1] or [channels].
        self.register_buffer("calibrated_exponent", torch.empty(0, dtype=torch.int32))

    @property
    def name(self) -> str | None:
        """The observer's name, shown in its error messages."""
        return self.activation_post_process.name

    @name.setter
    def name(self, value: str | None) -> None:
        self.activation_post_process.name = value

    def _adopt_observer_exponent(self) -> None:
        exponent = torch.as_tensor(self.activation_post_process.exponent, dtype=torch.int32).reshape(-1)
        self.calibrated_exponent = exponent.to(self.calibrated_exponent.device)

    @property
    def exponent(self) -> int | torch.Tensor:
        """The applied exponent: an int per tensor, an int32 tensor per channel (the observer's if unset)."""
        if self.calibrated_exponent.numel() == 0:
            self._adopt_observer_exponent()
        if self.is_per_channel:
            return self.calibrated_exponent.clone()
        return int(self.calibrated_exponent[0])

    @property
    def scale(self) -> torch.Tensor:
        """``2**exponent`` as float32, shape ``[1]`` or ``[channels]``."""
        return self.calculate_qparams()[0]

    @property
    def zero_point(self) -> torch.Tensor:
        """Always zeros (int64): power-of-two quantization is symmetric."""
        return self.calculate_qparams()[1]

    def calculate_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        """``(scale, zero_point)`` of the exponent this module applies."""
        exponents = torch.as_tensor(self.exponent, dtype=torch.int32).reshape(-1)
        return power_of_two(exponents), torch.zeros_like(exponents, dtype=torch.int64)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Observe ``X`` if the observer is enabled; fake-quantize it if fake quant is enabled."""
        if self.observer_enabled[0] == 1:
            self.activation_post_process(X.detach())
            self._adopt_observer_exponent()
        if self.fake_quant_enabled[0] == 1:
            axis = self.ch_axis if self.is_per_channel else None
            X = fake_quantize(X, self.exponent, self.bits, self.signed, axis=axis)
        return X

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # The exponent's shape is [0] before calibration and [1] or [channels] after.
        key = prefix + "calibrated_exponent"
        if key in state_dict and state_dict[key].shape != self.calibrated_exponent.shape:
            self.calibrated_exponent = self.calibrated_exponent.new_empty(state_dict[key].shape)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def extra_repr(self) -> str:
        return (
            f"fake_quant_enabled={int(self.fake_quant_enabled[0])}, "
            f"observer_enabled={int(self.observer_enabled[0])}, bits={self.bits}, signed={self.signed}, "
            f"quant_min={self.quant_min}, quant_max={self.quant_max}, ch_axis={self.ch_axis}"
        )
