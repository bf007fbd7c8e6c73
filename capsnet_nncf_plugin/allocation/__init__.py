"""Bit-width allocation: memory accounting, quantization-error analysis, the progressive methods.

- :func:`allocate` searches per-layer bits with a named method (:func:`available_methods`);
- :class:`BitAllocation` holds the result (JSON round trip) for the FX flow, NNCF and export;
- :func:`analyze_errors` measures each layer's error per bit-width alone;
- :func:`memory_report` accounts weights, activations and routing tensors against FP32.
"""

from capsnet_nncf_plugin.allocation.allocate import allocate
from capsnet_nncf_plugin.allocation.layers import Layer, quantizable_layers
from capsnet_nncf_plugin.allocation.memory import MemoryReport, memory_report
from capsnet_nncf_plugin.allocation.methods import available_methods, get_method, register_method
from capsnet_nncf_plugin.allocation.sensitivity import ErrorAnalysis, analyze_errors
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation

__all__ = [
    "BitAllocation",
    "ErrorAnalysis",
    "Layer",
    "MemoryReport",
    "allocate",
    "analyze_errors",
    "available_methods",
    "get_method",
    "memory_report",
    "quantizable_layers",
    "register_method",
]
