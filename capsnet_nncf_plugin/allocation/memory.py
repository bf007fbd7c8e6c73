"""Memory accounting of a quantized model, against its FP32 original.

Definitions (docs/memory.md has a worked example):

* weights memory = sum over parameters of their bits: quantized weights at their bit-width, every other
  parameter (biases, BatchNorm affines) at 32 bits, as stored by the deployed model;
* activation memory = sum over quantized activation tensors of elements per sample x bits; the peak is the
  largest single activation tensor;
* routing memory = the same sum over the routing tensors b, c, s, v of every iteration, kept apart.

Reductions divide the FP32 size of the same tensors (32 bits each) by the quantized size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from capsnet_nncf_plugin.quantized.points import QuantizationPoint

FLOAT_BITS = 32


@dataclass(frozen=True)
class MemoryReport:
    """Bits of each memory class, quantized and FP32, and the reductions (FP32 / quantized)."""

    weight_bits: int
    weight_bits_fp32: int
    activation_bits: int
    activation_bits_fp32: int
    peak_activation_bits: int
    peak_activation_bits_fp32: int
    routing_bits: int
    routing_bits_fp32: int

    @property
    def weight_reduction(self) -> float:
        return self.weight_bits_fp32 / self.weight_bits

    @property
    def activation_reduction(self) -> float:
        return self.activation_bits_fp32 / self.activation_bits if self.activation_bits else float("nan")

    @property
    def routing_reduction(self) -> float:
        return self.routing_bits_fp32 / self.routing_bits if self.routing_bits else float("nan")

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values.update(
            weight_reduction=self.weight_reduction,
            activation_reduction=self.activation_reduction,
            routing_reduction=self.routing_reduction,
        )
        return values


def memory_report(points: list[QuantizationPoint], float_model: torch.nn.Module) -> MemoryReport:
    """Memory of a model quantized with ``points`` (``quantization_points``) from ``float_model``.

    Parameters of ``float_model`` not covered by a weight point count at 32 bits in the quantized model too.
    """
    weights = [p for p in points if p.kind == "weight"]
    activations = [p for p in points if p.kind == "activation"]
    routing = [p for p in points if p.kind == "routing"]
    parameters = sum(parameter.numel() for parameter in float_model.parameters())
    quantized_parameters = sum(p.elements_per_sample for p in weights)
    if quantized_parameters > parameters:
        raise ValueError(
            f"the quantization points hold {quantized_parameters} weights but the float model has only "
            f"{parameters} parameters; pass the float model the quantized one was made from"
        )
    weight_bits = sum(p.elements_per_sample * p.bits for p in weights)
    weight_bits += (parameters - quantized_parameters) * FLOAT_BITS
    largest = max(activations, key=lambda p: p.elements_per_sample * p.bits, default=None)
    largest_fp32 = max((p.elements_per_sample for p in activations), default=0) * FLOAT_BITS
    return MemoryReport(
        weight_bits=weight_bits,
        weight_bits_fp32=parameters * FLOAT_BITS,
        activation_bits=sum(p.elements_per_sample * p.bits for p in activations),
        activation_bits_fp32=sum(p.elements_per_sample for p in activations) * FLOAT_BITS,
        peak_activation_bits=0 if largest is None else largest.elements_per_sample * largest.bits,
        peak_activation_bits_fp32=largest_fp32,
        routing_bits=sum(p.elements_per_sample * p.bits for p in routing),
        routing_bits_fp32=sum(p.elements_per_sample for p in routing) * FLOAT_BITS,
    )
