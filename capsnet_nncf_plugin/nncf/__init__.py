"""The NNCF adapter: add the plugin to an existing NNCF configuration.

    from capsnet_nncf_plugin.nncf import quantize
    integer_model = quantize(model, nncf.Dataset(batches), {"preset": "performance", "subset_size": 300,
                                                            "capsnet": {"allocation": "allocation.json"}})

``integer_model`` is the plugin's integer model, as from the FX flow: ``export_onnx`` writes it.
"""

from capsnet_nncf_plugin.nncf.config import (
    CapsnetSection,
    ConfigError,
    NNCFQuantizationConfig,
    load_config,
)
from capsnet_nncf_plugin.nncf.metatypes import CAPSULE_METATYPES, register_capsule_metatypes
from capsnet_nncf_plugin.nncf.quantize import NNCFQuantization, quantize, quantize_with_report
from capsnet_nncf_plugin.nncf.quantizer import PowerOfTwoSymmetricQuantizer, use_power_of_two_quantizers

__all__ = [
    "CAPSULE_METATYPES",
    "CapsnetSection",
    "ConfigError",
    "NNCFQuantization",
    "NNCFQuantizationConfig",
    "PowerOfTwoSymmetricQuantizer",
    "load_config",
    "quantize",
    "quantize_with_report",
    "register_capsule_metatypes",
    "use_power_of_two_quantizers",
]
