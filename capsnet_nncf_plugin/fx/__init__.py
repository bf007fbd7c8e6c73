"""The torch.ao FX adapter: capsule-aware qconfigs and custom-module configs for prepare_fx/convert_fx.

prepared = prepare_fx(model, get_capsnet_qconfig_mapping(...), example_inputs,
                      prepare_custom_config=get_capsnet_prepare_custom_config(),
                      backend_config=get_capsnet_backend_config())
... calibrate: run prepared(batch) on a few batches ...
quantized = convert_fx(prepared, convert_custom_config=get_capsnet_convert_custom_config(),
                       backend_config=get_capsnet_backend_config())

The result is the plugin's integer model (:mod:`capsnet_nncf_plugin.quantized`). ``LayerBits``,
``RoutingBits`` (now in :mod:`capsnet_nncf_plugin.core`) and ``QuantizationPoint`` (now in
:mod:`capsnet_nncf_plugin.quantized`) are still served here, with a deprecation warning.
"""

from capsnet_nncf_plugin.deprecation import moved_names
from capsnet_nncf_plugin.fx.custom_configs import (
    get_capsnet_convert_custom_config,
    get_capsnet_prepare_custom_config,
)
from capsnet_nncf_plugin.fx.input_formats import MODEL_INPUT_BITS, separate_input_formats
from capsnet_nncf_plugin.fx.qconfig import get_capsnet_qconfig_mapping
from capsnet_nncf_plugin.fx.shared_calibration import SharedCalibration
from capsnet_nncf_plugin.fx.workflow import quantize_fx, release_models_held_by_torch_ao
from capsnet_nncf_plugin.patterns import get_capsnet_backend_config
from capsnet_nncf_plugin.quantized import quantization_points

__all__ = [
    "MODEL_INPUT_BITS",
    "SharedCalibration",
    "get_capsnet_backend_config",
    "get_capsnet_convert_custom_config",
    "get_capsnet_prepare_custom_config",
    "get_capsnet_qconfig_mapping",
    "quantization_points",
    "quantize_fx",
    "release_models_held_by_torch_ao",
    "separate_input_formats",
]

__getattr__ = moved_names(
    __name__,
    {
        "LayerBits": "capsnet_nncf_plugin.core.bit_widths",
        "RoutingBits": "capsnet_nncf_plugin.core.bit_widths",
        "QuantizationPoint": "capsnet_nncf_plugin.quantized.points",
    },
)
