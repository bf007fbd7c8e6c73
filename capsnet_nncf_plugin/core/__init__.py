"""The quantization core: plain torch (and plain Python), no torch.ao, NNCF, ONNX or onnxruntime.

Everything else adapts to it: the integer formats and the one rule that picks their containers
(:mod:`.integer_format`), power-of-two arithmetic (:mod:`.arithmetic`), the clipping rules
(:mod:`.clipping`), ranges known a priori (:mod:`.fixed_ranges`), the frozen quantizer
(:mod:`.quantizer`), bit-widths (:mod:`.bit_widths`), quantization settings (:mod:`.settings`) and the
``BitAllocation`` file (:mod:`.bit_allocation`).

Names are imported on first use, so that :mod:`.integer_format` (pure Python) can be used where torch is
not installed, as the ONNX domain and the runtime do.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "integer_format": (
        "MAX_BITS",
        "MIN_BITS",
        "Encoding",
        "IntegerType",
        "carrier_encoding",
        "check_bits",
        "code_type",
        "container_bits",
        "quant_range",
        "transport_encoding",
        "weight_encoding",
    ),
    "arithmetic": (
        "MAX_EXPONENT",
        "MIN_EXPONENT",
        "check_exponent",
        "dequantize",
        "fake_quantize",
        "power_of_two",
        "quantize",
    ),
    "clipping": (
        "CLIP_MODES",
        "DEFAULT_CLIP",
        "DEFAULT_PERCENTILE",
        "check_clip_mode",
        "hardware_exponent",
        "minmax_exponent",
        "mse_exponent",
        "mse_exponents",
        "percentile_exponent",
        "quantization_mse",
        "smallest_exponent_covering",
    ),
    "fixed_ranges": ("coupling_coefficient_exponent", "fixed_exponent_for_range", "squash_output_exponent"),
    "quantizer": ("PowerOfTwoQuantizer",),
    "bit_widths": ("ROUTING_TENSORS", "LayerBits", "RoutingBits", "routing_entries"),
    "settings": ("WEIGHT_ROUNDINGS", "QuantizationSettings", "check_weight_rounding"),
    "bit_allocation": ("BitAllocation",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
