"""onnxruntime support of the ``capsnet`` ONNX domain (``IntSquash``, ``IntDynamicRouting``).

- :func:`library_path`: the native custom-op library (``libcapsnet_ort_ops.so``, compiled from ``csrc/``
  when the package is installed), for ``register_custom_ops_library`` in Python or
  ``RegisterCustomOpsLibrary`` in C/C++;
- :func:`session_options`, :func:`InferenceSession`: onnxruntime sessions with the library registered;
- :class:`OnnxClassifier`: a session as an ``images -> scores`` callable on torch tensors;
- :func:`register_schemas`: the ONNX schemas, so ``onnx.checker`` and shape inference accept the ops;
- :func:`declare_output_types`: the output dtypes onnxruntime needs the model to state.

docs/runtime.md is the guide; docs/integer-ops.md specifies the arithmetic, which the library reproduces
bit for bit from the torch reference in :mod:`capsnet_nncf_plugin.ops`.
"""

from __future__ import annotations

from capsnet_nncf_plugin.runtime.library import (
    LIBRARY_ENV,
    LIBRARY_FILE,
    NativeLibraryNotFoundError,
    library_path,
)
from capsnet_nncf_plugin.runtime.output_types import declare_output_types
from capsnet_nncf_plugin.runtime.schemas import (
    DOMAIN,
    DOMAIN_VERSION,
    INT_DYNAMIC_ROUTING,
    INT_SQUASH,
    register_schemas,
)
from capsnet_nncf_plugin.runtime.session import InferenceSession, OnnxClassifier, session_options

__all__ = [
    "DOMAIN",
    "DOMAIN_VERSION",
    "INT_DYNAMIC_ROUTING",
    "INT_SQUASH",
    "LIBRARY_ENV",
    "LIBRARY_FILE",
    "InferenceSession",
    "NativeLibraryNotFoundError",
    "OnnxClassifier",
    "declare_output_types",
    "library_path",
    "register_schemas",
    "session_options",
]
