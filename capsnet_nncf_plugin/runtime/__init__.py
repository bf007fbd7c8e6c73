"""onnxruntime support of the ``capsnet`` ONNX domain (``IntSquash``, ``IntDynamicRouting``).

- :func:`library_path`: the native custom-op library (``libcapsnet_ort_ops.so``, compiled from ``csrc/``
  when the package is installed), for ``register_custom_ops_library`` in Python or
  ``RegisterCustomOpsLibrary`` in C/C++;
- :func:`session_options`, :func:`InferenceSession`: onnxruntime sessions with the library registered;
- :class:`OnnxClassifier`: a session as an ``images -> scores`` callable (numpy arrays, or torch tensors
  when given torch tensors);
- :func:`register_schemas`, :func:`declare_output_types`: the ``capsnet`` domain's schemas and output
  types (defined in :mod:`capsnet_nncf_plugin.onnx_domain`).

The runtime needs onnxruntime, onnx and numpy only: it imports no torch, so an exported model runs on a
deployment machine without it.

docs/runtime.md is the guide; docs/integer-ops.md specifies the arithmetic, which the library reproduces
bit for bit from the torch reference in :mod:`capsnet_nncf_plugin.ops`.
"""

from __future__ import annotations

from capsnet_nncf_plugin.onnx_domain import (
    DOMAIN,
    DOMAIN_VERSION,
    INT_DYNAMIC_ROUTING,
    INT_SQUASH,
    declare_output_types,
    register_schemas,
)
from capsnet_nncf_plugin.runtime.library import (
    LIBRARY_ENV,
    LIBRARY_FILE,
    NativeLibraryNotFoundError,
    library_path,
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
