"""Weight rounding: which integer code each weight gets once its power-of-two scale is fixed.

Round-to-nearest is the quantizer's own (``PowerOfTwoQuantizer.quantize``). GPTQ rounds the weights of
a layer one input column at a time and feeds each column's rounding error back into the columns not yet
rounded, weighted by the second moments of the layer's inputs, so the layer's *outputs* move as little as
possible. Scales, bits and clipping are unchanged: only codes differ, so every adapter, the export and
the integer kernels take GPTQ's codes exactly as they take rounded ones.
"""

from capsnet_nncf_plugin.rounding.gptq import (
    WEIGHT_ROUNDINGS,
    check_weight_rounding,
    gptq_codes,
    gptq_layer_codes,
)
from capsnet_nncf_plugin.rounding.input_moments import InputMoments, supports_gptq

__all__ = [
    "WEIGHT_ROUNDINGS",
    "InputMoments",
    "check_weight_rounding",
    "gptq_codes",
    "gptq_layer_codes",
    "supports_gptq",
]
