"""``PowerOfTwoObserver``: a torch.ao observer that records statistics and picks a power-of-two scale.

A thin shell over the core: statistics in buffers (so a calibrated prepared model survives ``state_dict``
and ``deepcopy``), the exponent from one of the clipping rules in :mod:`.clipping`, the scale from
:func:`~capsnet_nncf_plugin.core.arithmetic.power_of_two`. It passes its input through unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.ao.quantization.observer import ObserverBase

from capsnet_nncf_plugin.core.arithmetic import power_of_two
from capsnet_nncf_plugin.core.clipping import (
    DEFAULT_PERCENTILE,
    check_clip_mode,
    check_percentile,
    hardware_exponent,
    minmax_exponent,
    mse_exponents,
    percentile_exponent,
)
from capsnet_nncf_plugin.core.integer_format import quant_range
from capsnet_nncf_plugin.errors import CalibrationError
from capsnet_nncf_plugin.observers.reservoir import merge_into_reservoir, sampling_generator
from capsnet_nncf_plugin.observers.torch_ao_dtype import check_dtype_holds_format, torch_ao_dtype

#: Values an activation observer keeps for the ``percentile`` and ``mse`` modes: 4 MiB of float32, enough
#: for percentiles down to 1e-6 of the tail and MSE estimates far below quantization noise.
DEFAULT_RESERVOIR_SIZE = 2**20

_MAX_SEED = 2**31 - 1
# Modes that need the values themselves; minmax and hardware need only the running extremes.
_SAMPLING_MODES = ("percentile", "mse")


def saw_no_data_message(name: str | None) -> str:
    """The message of the error raised when qparams are requested from an observer that saw nothing."""
    return (
        f"{_describe(name)} saw no data: run calibration batches through the prepared model before "
        f"convert_fx (or before reading its scale)"
    )


def check_finite(tensor: torch.Tensor, name: str | None) -> None:
    """Raise :class:`CalibrationError` if ``tensor`` holds NaN or infinite values."""
    if not tensor.is_floating_point() or tensor.numel() == 0:
        return
    # Extremes propagate NaN and infinity, so finite extremes mean a finite tensor: one reduction instead
    # of a boolean copy of the tensor (isfinite took a fifth of a DeepCaps calibration).
    low, high = torch.aminmax(tensor)
    if not (math.isfinite(low) and math.isfinite(high)):
        nan_count = int(torch.isnan(tensor).sum())
        inf_count = int(torch.isinf(tensor).sum())
        raise CalibrationError(
            f"{_describe(name)} saw non-finite values ({nan_count} NaN, {inf_count} infinite) in a "
            f"calibration batch; check the calibration data and the layer that produces this tensor "
            f"(an overflow, a log or division of zero), fix it, and calibrate again"
        )


def _describe(name: str | None) -> str:
    return f"observer {name!r}" if name else "observer"


class PowerOfTwoObserver(ObserverBase):
    """Observes a tensor and produces a power-of-two scale ``2**exponent`` with zero point 0.

    Args:
        bits: integer width, 2..16.
        signed: two's complement range ``[-2**(bits-1), 2**(bits-1)-1]`` or unsigned ``[0, 2**bits-1]``.
        clip: ``"minmax"``, ``"hardware"``, ``"percentile"`` or ``"mse"`` (rules in docs/observers.md).
        percentile: the percentile of the magnitudes the ``percentile`` mode covers, in (0, 100].
        reservoir_size: how many values (per channel) ``percentile``/``mse`` keep, as a uniform sample of
            everything seen. ``None`` keeps the most recent tensor whole instead - right for weights, which
            are the same tensor at every call, and makes their statistics exact.
        seed: seeds the sample, so that calibration is reproducible.
        ch_axis: ``None`` for one scale per tensor, else the axis with one scale per slice.
        name: shown in error messages (an adapter sets it to the layer name).
        dtype: the dtype reported to torch.ao; by default :func:`.torch_ao_dtype.torch_ao_dtype`.
        is_dynamic: must be False; present because torch.ao passes it.
    """

    min_val: torch.Tensor
    max_val: torch.Tensor
    batches_seen: torch.Tensor

    def __init__(
        self,
        bits: int = 8,
        signed: bool = False,
        clip: str = "minmax",
        percentile: float = DEFAULT_PERCENTILE,
        reservoir_size: int | None = DEFAULT_RESERVOIR_SIZE,
        seed: int = 0,
        ch_axis: int | None = None,
        name: str | None = None,
        dtype: torch.dtype | None = None,
        is_dynamic: bool = False,
    ) -> None:
        quant_min, quant_max = quant_range(bits, signed)
        if is_dynamic:
            raise ValueError("power-of-two observers are for static quantization; pass is_dynamic=False")
        if dtype is None:
            dtype = torch_ao_dtype(bits, signed)
        super().__init__(dtype=check_dtype_holds_format(dtype, bits, signed), is_dynamic=False)
        if reservoir_size is not None and (
            isinstance(reservoir_size, bool) or not isinstance(reservoir_size, int) or reservoir_size < 1
        ):
            raise ValueError(f"reservoir_size must be a positive int or None, got {reservoir_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
            raise ValueError(f"seed must be an int in 0..{_MAX_SEED}, got {seed!r}")
        if ch_axis is not None and (isinstance(ch_axis, bool) or not isinstance(ch_axis, int)):
            raise ValueError(f"ch_axis must be an int or None (per tensor), got {ch_axis!r}")
        self.bits = bits
        self.signed = bool(signed)
        self.quant_min, self.quant_max = quant_min, quant_max
        self.clip = check_clip_mode(clip)
        self.percentile = check_percentile(percentile)
        self.reservoir_size = reservoir_size
        self.seed = seed
        self.ch_axis = ch_axis
        self.name = name
        self.qscheme = torch.per_tensor_symmetric if ch_axis is None else torch.per_channel_symmetric
        # Empty until the first batch: a per-channel observer learns its channel count from the data.
        self.register_buffer("min_val", torch.empty(0))
        self.register_buffer("max_val", torch.empty(0))
        self.register_buffer("batches_seen", torch.tensor(0, dtype=torch.int64))
        self._keeps_sample = clip in _SAMPLING_MODES
        if self._keeps_sample:
            self.register_buffer("sample_values", torch.empty(0, 0))
            self.register_buffer("sample_keys", torch.empty(0, dtype=torch.float64))
        self._cached_exponents: torch.Tensor | None = None

    @property
    def per_channel(self) -> bool:
        """Whether this observer produces one exponent per slice along ``ch_axis``."""
        return self.ch_axis is not None

    def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
        """Record the statistics of ``x_orig`` and return it unchanged."""
        if x_orig.numel() == 0:
            return x_orig
        columns = self._as_channel_columns(x_orig.detach())
        batch_min, batch_max = torch.aminmax(columns, dim=1)
        if not bool(torch.isfinite(batch_min).all() and torch.isfinite(batch_max).all()):
            check_finite(columns, self.name)  # extremes propagate NaN and infinity: name what was seen
        if int(self.batches_seen) == 0:
            self.min_val, self.max_val = batch_min, batch_max
        else:
            if batch_min.shape != self.min_val.shape:
                raise CalibrationError(
                    f"{_describe(self.name)} saw {batch_min.numel()} channels along axis {self.ch_axis} "
                    f"after {self.min_val.numel()} before; feed tensors with a fixed channel count, or use "
                    f"a per-tensor observer (ch_axis=None)"
                )
            self.min_val = torch.minimum(self.min_val, batch_min)
            self.max_val = torch.maximum(self.max_val, batch_max)
        if self._keeps_sample:
            self._sample(columns)
        self.batches_seen += 1
        self._cached_exponents = None
        return x_orig

    def _as_channel_columns(self, observed: torch.Tensor) -> torch.Tensor:
        """``observed`` as float32 ``[channels, values]``; one channel for a per-tensor observer."""
        if self.ch_axis is None:
            return observed.reshape(1, -1).float()
        if observed.dim() == 0:
            raise CalibrationError(
                f"{_describe(self.name)} is per-channel along axis {self.ch_axis} but got a 0-d tensor; "
                f"use a per-tensor observer (ch_axis=None) for scalars"
            )
        axis = self.ch_axis % observed.dim()
        return observed.movedim(axis, 0).reshape(observed.shape[axis], -1).float()

    def _sample(self, columns: torch.Tensor) -> None:
        if self.reservoir_size is None:
            self.sample_values = columns.clone()
            return
        kept_values = self.sample_values
        if kept_values.numel() == 0:
            kept_values = columns.new_empty(columns.shape[0], 0)
        generator = sampling_generator(self.seed, int(self.batches_seen))
        self.sample_values, self.sample_keys = merge_into_reservoir(
            kept_values, self.sample_keys.to(columns.device), columns, self.reservoir_size, generator
        )

    def _exponents(self) -> torch.Tensor:
        """One int32 exponent per channel (one for a per-tensor observer), cached until the next batch."""
        if int(self.batches_seen) == 0:
            raise CalibrationError(saw_no_data_message(self.name))
        if self._cached_exponents is None:
            mins, maxs = self.min_val.tolist(), self.max_val.tolist()
            if self.clip == "mse":
                # The sample may miss the extremes; the search starts from the exponent covering all data.
                exponents = mse_exponents(self.sample_values, self.bits, self.signed, mins, maxs)
            else:
                exponents = [
                    self._exponent_of_channel(index, mins[index], maxs[index]) for index in range(len(mins))
                ]
            self._cached_exponents = torch.tensor(exponents, dtype=torch.int32)
        # The cache is not a buffer, so .to(device) does not move it; follow the statistics instead.
        return self._cached_exponents.to(self.min_val.device)

    def _exponent_of_channel(self, index: int, min_val: float, max_val: float) -> int:
        if self.clip == "minmax":
            return minmax_exponent(min_val, max_val, self.bits, self.signed)
        if self.clip == "hardware":
            return hardware_exponent(min_val, max_val, self.bits, self.signed)
        return percentile_exponent(self.sample_values[index], self.bits, self.signed, self.percentile)

    @property
    def exponent(self) -> int | torch.Tensor:
        """The chosen exponent: an int per tensor, an int32 tensor ``[channels]`` per channel."""
        exponents = self._exponents()
        return exponents.clone() if self.per_channel else int(exponents[0])

    def set_bits(self, bits: int) -> None:
        """Change the width before calibration (an adapter that learns a tensor's role after prepare)."""
        if int(self.batches_seen) > 0:
            raise CalibrationError(f"{_describe(self.name)} has seen data; set its bits before calibration")
        self.quant_min, self.quant_max = quant_range(bits, self.signed)
        self.dtype = check_dtype_holds_format(torch_ao_dtype(bits, self.signed), bits, self.signed)
        self.bits = bits

    def adopt_range(self, min_val: float, max_val: float) -> None:
        """Replace the statistics by a range calibrated elsewhere (NNCF's) and choose the ``minmax`` exponent.

        The other adapter already decided how much to clip; rounding its range up to a power of two is then
        the only step left, the same rule its own power-of-two quantizer applies.
        """
        if self.per_channel:
            raise ValueError(f"{_describe(self.name)} is per-channel; adopt_range sets one per-tensor range")
        if not min_val <= max_val:
            raise ValueError(f"adopt_range needs min_val <= max_val, got {min_val} > {max_val}")
        self.min_val = torch.tensor([float(min_val)], device=self.min_val.device)
        self.max_val = torch.tensor([float(max_val)], device=self.min_val.device)
        self.batches_seen = torch.clamp(self.batches_seen, min=1)
        self.clip = "minmax"
        self._cached_exponents = None

    def adopt_magnitude(self, magnitude: float) -> None:
        """:meth:`adopt_range` of ``[-magnitude, magnitude]``, or ``[0, magnitude]`` for a tensor that is
        unsigned: one this observer saw no negative value of (the sign stays what the data said)."""
        saw_negative = int(self.batches_seen) > 0 and bool(self.min_val.min() < 0)
        self.adopt_range(-magnitude if self.signed or saw_negative else 0.0, magnitude)

    def calculate_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        """``(scale, zero_point)``: float32 ``2**exponent`` and int64 zeros, shape [1] or [channels]."""
        exponents = self._exponents()
        return power_of_two(exponents), torch.zeros_like(exponents, dtype=torch.int64)

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
        # Statistics buffers take their shape from the data; a fresh observer must accept any shape.
        for buffer_name in ("min_val", "max_val", "sample_values", "sample_keys"):
            key = prefix + buffer_name
            current = getattr(self, buffer_name, None)
            if key in state_dict and current is not None and current.shape != state_dict[key].shape:
                setattr(self, buffer_name, current.new_empty(state_dict[key].shape))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        self._cached_exponents = None

    def extra_repr(self) -> str:
        described = f"bits={self.bits}, signed={self.signed}, clip={self.clip!r}"
        if self.clip == "percentile":
            described += f", percentile={self.percentile}"
        if self.per_channel:
            described += f", ch_axis={self.ch_axis}"
        if self.name:
            described += f", name={self.name!r}"
        return described


class PowerOfTwoPerChannelObserver(PowerOfTwoObserver):
    """A :class:`PowerOfTwoObserver` with one exponent per slice of ``ch_axis``, set up for weights.

    Defaults differ from the per-tensor class where weights differ from activations: signed, ``ch_axis=0``
    (output channels of Conv and Linear weights). All arguments are those of :class:`PowerOfTwoObserver`.
    """

    def __init__(
        self, bits: int = 8, signed: bool = True, clip: str = "minmax", ch_axis: int = 0, **kwargs: Any
    ):
        if ch_axis is None:
            raise ValueError(
                "PowerOfTwoPerChannelObserver needs an int ch_axis; use PowerOfTwoObserver for per tensor"
            )
        super().__init__(bits=bits, signed=signed, clip=clip, ch_axis=ch_axis, **kwargs)
