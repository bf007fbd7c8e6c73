"""Moved to :mod:`capsnet_nncf_plugin.onnx_domain.int4` (the runtime uses it without torch)."""

import warnings

from capsnet_nncf_plugin.onnx_domain.int4 import (
    INT4_BUFFER,
    pack_int4,
    store_int4_weights,
    widen_int4_weights,
)

warnings.warn(
    "capsnet_nncf_plugin.export.int4 moved: import from capsnet_nncf_plugin.onnx_domain.int4",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["INT4_BUFFER", "pack_int4", "store_int4_weights", "widen_int4_weights"]
