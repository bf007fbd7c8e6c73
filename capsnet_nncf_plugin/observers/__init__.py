"""torch.ao observers and fake quantization over the power-of-two core.

The maths (integer formats, power-of-two arithmetic, clipping rules, fixed ranges) lives once in
:mod:`capsnet_nncf_plugin.core`, which imports no torch.ao; the classes here are thin torch.ao shells over
it, and :func:`freeze` turns a calibrated one into the integer model's ``PowerOfTwoQuantizer``. The core's
names are re-exported here, where they were first documented. See docs/observers.md.
"""

from capsnet_nncf_plugin.core.arithmetic import (
    MAX_EXPONENT,
    MIN_EXPONENT,
    dequantize,
    fake_quantize,
    power_of_two,
    quantize,
)
from capsnet_nncf_plugin.core.clipping import (
    CLIP_MODES,
    DEFAULT_CLIP,
    DEFAULT_PERCENTILE,
    hardware_exponent,
    minmax_exponent,
    mse_exponent,
    mse_exponents,
    percentile_exponent,
    quantization_mse,
    smallest_exponent_covering,
)
from capsnet_nncf_plugin.core.fixed_ranges import (
    coupling_coefficient_exponent,
    fixed_exponent_for_range,
    squash_output_exponent,
)
from capsnet_nncf_plugin.core.integer_format import MAX_BITS, MIN_BITS, check_bits, quant_range
from capsnet_nncf_plugin.errors import CalibrationError
from capsnet_nncf_plugin.observers.fake_quantizer import PowerOfTwoFakeQuantize
from capsnet_nncf_plugin.observers.fixed_range_observer import FixedRangeObserver
from capsnet_nncf_plugin.observers.freeze import freeze
from capsnet_nncf_plugin.observers.observer import (
    DEFAULT_RESERVOIR_SIZE,
    PowerOfTwoObserver,
    PowerOfTwoPerChannelObserver,
)
from capsnet_nncf_plugin.observers.presets import (
    coupling_observer,
    get_pot_qconfig,
    pot_activation_observer,
    pot_weight_observer,
    squash_output_observer,
)
from capsnet_nncf_plugin.observers.torch_ao_dtype import torch_ao_dtype

__all__ = [
    "CLIP_MODES",
    "DEFAULT_CLIP",
    "DEFAULT_PERCENTILE",
    "DEFAULT_RESERVOIR_SIZE",
    "MAX_BITS",
    "MAX_EXPONENT",
    "MIN_BITS",
    "MIN_EXPONENT",
    "CalibrationError",
    "FixedRangeObserver",
    "PowerOfTwoFakeQuantize",
    "PowerOfTwoObserver",
    "PowerOfTwoPerChannelObserver",
    "check_bits",
    "coupling_coefficient_exponent",
    "coupling_observer",
    "dequantize",
    "fake_quantize",
    "fixed_exponent_for_range",
    "freeze",
    "get_pot_qconfig",
    "hardware_exponent",
    "minmax_exponent",
    "mse_exponent",
    "mse_exponents",
    "percentile_exponent",
    "pot_activation_observer",
    "pot_weight_observer",
    "power_of_two",
    "quant_range",
    "quantization_mse",
    "quantize",
    "smallest_exponent_covering",
    "squash_output_exponent",
    "squash_output_observer",
    "torch_ao_dtype",
]
