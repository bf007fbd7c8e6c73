"""capsnet-nncf-plugin: power-of-two post-training quantization of capsule networks.

Subpackages (docs/architecture.md): ``core`` (the quantization maths, no framework), ``quantized`` (the
integer model), ``ops`` (integer squash and routing), ``observers`` (torch.ao observers), ``patterns``
(BackendConfig), ``fx`` and ``nncf`` (the adapters), ``capture`` (users' CapsNets), ``export`` (QDQ ONNX),
``onnx_domain`` and ``runtime`` (onnxruntime, without torch), ``allocation`` (bit-widths), ``job`` (the main
jobs), ``cli``, and ``nn``, ``models``, ``data``, ``training``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "quantization_points"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the integer model registers the integer ops, which the CLI's data and training
    # commands never need, and the runtime must import without torch.
    if name == "quantization_points":
        from capsnet_nncf_plugin.quantized import quantization_points

        return quantization_points
    raise AttributeError(f"module 'capsnet_nncf_plugin' has no attribute {name!r}")
