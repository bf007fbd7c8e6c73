"""The integer model: what both flows produce and export, allocation and reports consume.

- :mod:`.modules`: ``QuantizedLayer``, ``QuantizedSquashLayer``, ``QuantizedRoutingLayer``, built from
  float layers and frozen power-of-two formats; integer weights (:mod:`.weights`) and integer capsule ops;
- :mod:`.carrier`: torch quantized tensors carrying each format between modules;
- :mod:`.points` / :mod:`.inspection`: ``QuantizationPoint`` and ``quantization_points(model)``;
- :mod:`.layer_kinds`: which float layers have a quantized form;
- :mod:`.element_moves`: ops that only move elements, seen through by input formats and export.

Nothing here imports torch.ao, NNCF or onnxruntime: an adapter calibrates, this package computes.
"""

from capsnet_nncf_plugin.quantized.inspection import quantization_points, quantized_modules
from capsnet_nncf_plugin.quantized.layer_kinds import LAYER_KINDS, layer_kind, routing_iterations
from capsnet_nncf_plugin.quantized.modules import (
    QuantizedLayer,
    QuantizedModule,
    QuantizedRoutingLayer,
    QuantizedSquashLayer,
)
from capsnet_nncf_plugin.quantized.points import QuantizationPoint

__all__ = [
    "LAYER_KINDS",
    "QuantizationPoint",
    "QuantizedLayer",
    "QuantizedModule",
    "QuantizedRoutingLayer",
    "QuantizedSquashLayer",
    "layer_kind",
    "quantization_points",
    "quantized_modules",
    "routing_iterations",
]
