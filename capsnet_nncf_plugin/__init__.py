"""capsnet-nncf-plugin: power-of-two post-training quantization of capsule networks.

Subpackages: ``nn`` (capsule layers), ``models`` (ShallowCaps, DeepCaps, the zoo), ``data`` (datasets),
``observers`` (power-of-two quantization core and torch.ao observers), ``patterns`` (BackendConfig),
``ops`` (integer squash and routing), ``fx`` (the torch.ao FX adapter), ``training``, ``cli``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "quantization_points"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the FX adapter pulls in torch.ao and registers the integer ops, which the CLI's
    # data and training commands never need.
    if name == "quantization_points":
        from capsnet_nncf_plugin.fx.points import quantization_points

        return quantization_points
    raise AttributeError(f"module 'capsnet_nncf_plugin' has no attribute {name!r}")
