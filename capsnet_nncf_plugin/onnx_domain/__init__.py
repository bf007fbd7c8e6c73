"""The ``capsnet`` ONNX domain: op schemas and output types of ``IntSquash`` / ``IntDynamicRouting``, and
INT4 weight storage.

Imports onnx, numpy and the plain-Python integer formats of the core only - no torch, no exporter - so
that both the exporter (:mod:`capsnet_nncf_plugin.export`) and the runtime on a deployment machine without
torch (:mod:`capsnet_nncf_plugin.runtime`) use the same definitions.
"""

from capsnet_nncf_plugin.onnx_domain.int4 import (
    INT4_BUFFER,
    pack_int4,
    store_int4_weights,
    widen_int4_weights,
)
from capsnet_nncf_plugin.onnx_domain.output_types import declare_output_types
from capsnet_nncf_plugin.onnx_domain.schemas import (
    DOMAIN,
    DOMAIN_VERSION,
    INT_DYNAMIC_ROUTING,
    INT_SQUASH,
    ONNX_TYPES,
    register_schemas,
    signed_storage_type,
)

__all__ = [
    "DOMAIN",
    "DOMAIN_VERSION",
    "INT4_BUFFER",
    "INT_DYNAMIC_ROUTING",
    "INT_SQUASH",
    "ONNX_TYPES",
    "declare_output_types",
    "pack_int4",
    "register_schemas",
    "signed_storage_type",
    "store_int4_weights",
    "widen_int4_weights",
]
