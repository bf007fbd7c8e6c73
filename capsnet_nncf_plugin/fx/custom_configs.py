"""The custom-module configs that route the plugin's layers through its observed and quantized modules."""

from __future__ import annotations

from torch.ao.quantization.fx.custom_config import ConvertCustomConfig, PrepareCustomConfig

from capsnet_nncf_plugin.fx.observed import FLOAT_TO_OBSERVED, OBSERVED_TO_QUANTIZED


def get_capsnet_prepare_custom_config() -> PrepareCustomConfig:
    """Swaps every layer the plugin quantizes for its observed form (traced as a leaf, kept whole)."""
    config = PrepareCustomConfig()
    for float_class, observed_class in FLOAT_TO_OBSERVED.items():
        config.set_float_to_observed_mapping(float_class, observed_class)
    return config


def get_capsnet_convert_custom_config() -> ConvertCustomConfig:
    """Swaps each observed layer for its quantized form (integer weights, squash and routing)."""
    config = ConvertCustomConfig()
    for observed_class, quantized_class in OBSERVED_TO_QUANTIZED.items():
        config.set_observed_to_quantized_mapping(observed_class, quantized_class)
    return config
