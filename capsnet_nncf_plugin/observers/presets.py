"""Ready-made observer constructors and a QConfig, for the common cases.

Each returns a ``with_args`` constructor (what a ``torch.ao.quantization.QConfig`` holds) and builds one
instance on the spot, so a bad argument fails here rather than deep inside ``prepare_fx``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.ao.quantization import QConfig

from capsnet_nncf_plugin.core.clipping import DEFAULT_PERCENTILE
from capsnet_nncf_plugin.core.fixed_ranges import COUPLING_COEFFICIENT_MAX, SQUASH_OUTPUT_MAX_ABS
from capsnet_nncf_plugin.observers.fake_quantizer import PowerOfTwoFakeQuantize
from capsnet_nncf_plugin.observers.fixed_range_observer import FixedRangeObserver
from capsnet_nncf_plugin.observers.observer import DEFAULT_RESERVOIR_SIZE, PowerOfTwoObserver

ObserverConstructor = Callable[[], Any]


def _validated(constructor: ObserverConstructor) -> ObserverConstructor:
    constructor()
    return constructor


def pot_weight_observer(
    bits: int = 8, per_channel: bool = True, clip: str = "mse", ch_axis: int = 0
) -> ObserverConstructor:
    """Signed weights; one exponent per output channel (``ch_axis``) unless ``per_channel=False``.

    Weights are observed whole (no sampling), so ``percentile`` and ``mse`` are exact.
    """
    return _validated(
        PowerOfTwoObserver.with_args(
            bits=bits,
            signed=True,
            clip=clip,
            reservoir_size=None,
            ch_axis=ch_axis if per_channel else None,
        )
    )


def pot_activation_observer(
    bits: int = 8,
    signed: bool = False,
    clip: str = "hardware",
    percentile: float = DEFAULT_PERCENTILE,
    reservoir_size: int = DEFAULT_RESERVOIR_SIZE,
) -> ObserverConstructor:
    """Per-tensor activations, unsigned (``quint8`` up to 8 bits) unless ``signed=True``.

    Unsigned by default because torch's native FX BackendConfig silently skips ``qint8`` activations.
    """
    return _validated(
        PowerOfTwoObserver.with_args(
            bits=bits, signed=signed, clip=clip, percentile=percentile, reservoir_size=reservoir_size
        )
    )


def coupling_observer(bits: int = 8) -> ObserverConstructor:
    """Routing's coupling coefficients, in [0, 1]: unsigned, exponent ``-bits``."""
    return _validated(FixedRangeObserver.with_args(bits=bits, signed=False, max_abs=COUPLING_COEFFICIENT_MAX))


def squash_output_observer(bits: int = 8) -> ObserverConstructor:
    """Squash outputs, each component in (-1, 1): signed, exponent ``-(bits - 1)``."""
    return _validated(FixedRangeObserver.with_args(bits=bits, signed=True, max_abs=SQUASH_OUTPUT_MAX_ABS))


def get_pot_qconfig(
    weight_bits: int = 8,
    activation_bits: int = 8,
    clip: str | None = None,
    *,
    weight_clip: str = "mse",
    activation_clip: str = "hardware",
    signed_activations: bool = False,
    per_channel_weights: bool = True,
    fake_quantize: bool = False,
) -> QConfig:
    """A ``QConfig`` with power-of-two weight and activation observers.

    Args:
        weight_bits: weight width, 2..16.
        activation_bits: activation width, 2..16.
        clip: if given, the clipping mode of both; otherwise ``weight_clip`` and ``activation_clip``.
        weight_clip: clipping mode of the weights (default ``"mse"``).
        activation_clip: clipping mode of the activations (default ``"hardware"``).
        signed_activations: signed activation format (``qint8``); the default unsigned is ``quint8``.
        per_channel_weights: one weight exponent per output channel.
        fake_quantize: wrap both in :class:`.fake_quantize.PowerOfTwoFakeQuantize`, so the prepared model
            computes with quantized values (otherwise observers pass values through unchanged).
    """
    if clip is not None:
        weight_clip = activation_clip = clip
    weight = pot_weight_observer(weight_bits, per_channel=per_channel_weights, clip=weight_clip)
    activation = pot_activation_observer(activation_bits, signed=signed_activations, clip=activation_clip)
    if fake_quantize:
        weight = PowerOfTwoFakeQuantize.with_args(observer=weight)
        activation = PowerOfTwoFakeQuantize.with_args(observer=activation)
    return QConfig(activation=activation, weight=weight)
