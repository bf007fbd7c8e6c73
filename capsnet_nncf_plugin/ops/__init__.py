"""Integer (fixed-point) capsule ops: the bit-exact reference of squash, softmax and dynamic routing.

Quantized torch models call these (through ``torch.ops.capsnet.*``, registered on import), and the C++
onnxruntime kernels mirror them bit for bit; docs/integer-ops.md is the specification both follow.
"""

from capsnet_nncf_plugin.core.integer_format import MAX_BITS, MIN_BITS, quant_range
from capsnet_nncf_plugin.ops import library
from capsnet_nncf_plugin.ops.exp2_tables import EXP2_COARSE, EXP2_FINE
from capsnet_nncf_plugin.ops.fixed_point import (
    bit_length,
    requantize,
    round_shift,
    rounded_divide,
    saturate,
)
from capsnet_nncf_plugin.ops.integer_sqrt import integer_sqrt
from capsnet_nncf_plugin.ops.operands import (
    MAX_OP_EXPONENT,
    MIN_OP_EXPONENT,
    storage_dtype,
)
from capsnet_nncf_plugin.ops.routing import check_routing_bounds, int_dynamic_routing
from capsnet_nncf_plugin.ops.routing_quantization import RoutingQuantization
from capsnet_nncf_plugin.ops.softmax import LOG2E_Q24, int_softmax
from capsnet_nncf_plugin.ops.squash import MAX_CAPSULE_DIM, int_squash

__all__ = [
    "EXP2_COARSE",
    "EXP2_FINE",
    "LOG2E_Q24",
    "MAX_BITS",
    "MAX_CAPSULE_DIM",
    "MAX_OP_EXPONENT",
    "MIN_BITS",
    "MIN_OP_EXPONENT",
    "RoutingQuantization",
    "bit_length",
    "check_routing_bounds",
    "int_dynamic_routing",
    "int_softmax",
    "int_squash",
    "integer_sqrt",
    "library",
    "quant_range",
    "requantize",
    "round_shift",
    "rounded_divide",
    "saturate",
    "storage_dtype",
]
