"""``get_capsnet_backend_config()``: torch's native BackendConfig extended for capsule networks.

What it adds to the native config:

* dtype configs whose activations may be any power-of-two format of 2..16 bits: ``quint8`` (unsigned, or
  signed with zero point 128) up to 8 bits and ``qint32`` above, weights ``qint8``/``qint32`` with any
  narrowed range, so sub-8-bit qconfigs are accepted instead of silently dropped;
* patterns for the capsule ops - the vote transform (W_ij, a weighted module), squash, dynamic routing,
  whole capsule layers, and a convolution followed by squash - each observed at its input and output.

The plugin's own flow quantizes these ops through custom modules (see ``capsnet_nncf_plugin.fx``); the
patterns let torch.ao place observers around them, also in a user's model prepared with other qconfigs.
"""

from __future__ import annotations

import torch
from torch.ao.quantization.backend_config import (
    BackendConfig,
    BackendPatternConfig,
    DTypeConfig,
    ObservationType,
    get_native_backend_config,
)
from torch.ao.quantization.backend_config.backend_config import DTypeWithConstraints

from capsnet_nncf_plugin.core.integer_format import MAX_BITS, IntegerType, quant_range
from capsnet_nncf_plugin.nn import (
    ClassCapsules,
    ConvCaps2d,
    ConvCaps3d,
    DynamicRouting,
    PrimaryCapsules,
    Squash,
    VoteTransform,
)


def capsule_dtype_configs() -> list[DTypeConfig]:
    """Activation and weight formats of 2..8 bits in 8-bit containers and 9..16 bits in 32-bit ones (the
    carriers of :func:`~capsnet_nncf_plugin.core.integer_format.carrier_encoding`), any narrowed range.
    Observers report the codes' range: the wide bounds are those of the widest signed and unsigned codes."""
    small_low, small_high = IntegerType.UINT8.range
    small_activation = DTypeWithConstraints(
        dtype=torch.quint8, quant_min_lower_bound=small_low, quant_max_upper_bound=small_high
    )
    weight_low, weight_high = IntegerType.INT8.range
    small_weight = DTypeWithConstraints(
        dtype=torch.qint8, quant_min_lower_bound=weight_low, quant_max_upper_bound=weight_high
    )
    signed_low, signed_high = quant_range(MAX_BITS, signed=True)
    wide_activation = DTypeWithConstraints(
        dtype=torch.qint32,
        quant_min_lower_bound=signed_low,
        quant_max_upper_bound=quant_range(MAX_BITS, signed=False)[1],
    )
    wide_weight = DTypeWithConstraints(
        dtype=torch.qint32, quant_min_lower_bound=signed_low, quant_max_upper_bound=signed_high
    )
    return [
        DTypeConfig(
            input_dtype=small_activation,
            output_dtype=small_activation,
            weight_dtype=small_weight,
            bias_dtype=torch.float,
        ),
        DTypeConfig(
            input_dtype=wide_activation,
            output_dtype=wide_activation,
            weight_dtype=wide_weight,
            bias_dtype=torch.float,
        ),
    ]


def capsule_pattern_configs() -> list[BackendPatternConfig]:
    """Patterns for the capsule ops, all observed with separate input and output observers."""
    dtype_configs = capsule_dtype_configs()
    observed = ObservationType.OUTPUT_USE_DIFFERENT_OBSERVER_AS_INPUT
    patterns: list[BackendPatternConfig] = []
    for module_type in (
        VoteTransform,
        Squash,
        DynamicRouting,
        PrimaryCapsules,
        ConvCaps2d,
        ConvCaps3d,
        ClassCapsules,
    ):
        patterns.append(
            BackendPatternConfig(module_type).set_observation_type(observed).set_dtype_configs(dtype_configs)
        )
    # A convolution whose output is squashed directly (capsules along the channels): one pattern, so no
    # observer sits between the two and the integer squash reads the convolution's accumulator format.
    patterns.append(
        BackendPatternConfig((torch.nn.Conv2d, Squash))
        .set_observation_type(observed)
        .set_dtype_configs(dtype_configs)
    )
    return patterns


def get_capsnet_backend_config() -> BackendConfig:
    """The native BackendConfig plus the capsule patterns and 2..16-bit dtype configs."""
    config = get_native_backend_config()
    config.set_name("capsnet")
    config.set_backend_pattern_configs(capsule_pattern_configs())
    for pattern_config in list(config.configs):
        if pattern_config.pattern in (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear):
            for dtype_config in capsule_dtype_configs():
                pattern_config.add_dtype_config(dtype_config)
    return config


__all__ = ["capsule_dtype_configs", "capsule_pattern_configs", "get_capsnet_backend_config"]
