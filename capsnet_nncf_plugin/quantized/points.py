"""``QuantizationPoint``: one quantized tensor of an integer model, as memory accounting and export see it."""

from __future__ import annotations

from dataclasses import dataclass

from capsnet_nncf_plugin.core.fixed_ranges import coupling_coefficient_exponent, squash_output_exponent
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.ops import RoutingQuantization
from capsnet_nncf_plugin.quantized.weights import QuantizedWeights


@dataclass(frozen=True)
class QuantizationPoint:
    """One quantized tensor of a model: what ``quantization_points`` reports."""

    name: str
    kind: str  # "weight", "activation" or "routing"
    bits: int
    signed: bool
    exponent: int | tuple[int, ...]
    elements_per_sample: int  # for weights: the number of parameters


def weight_point(weights: QuantizedWeights, name: str) -> QuantizationPoint:
    quantizer = weights.quantizer
    return QuantizationPoint(name, "weight", quantizer.bits, True, quantizer.exponent, weights.codes.numel())


def activation_point(name: str, quantizer: PowerOfTwoQuantizer, elements: int) -> QuantizationPoint:
    return QuantizationPoint(
        name, "activation", quantizer.bits, quantizer.signed, quantizer.exponent, elements
    )


def routing_points(
    name: str, params: RoutingQuantization, elements: dict[str, int], rows: int
) -> list[QuantizationPoint]:
    """The per-iteration routing tensors b, c, s, v as points (``rows`` routings per sample)."""
    points = []
    for t in range(params.iterations):
        formats = [
            ("c", params.coupling_bits[t], False, coupling_coefficient_exponent(params.coupling_bits[t])),
            ("s", params.pre_bits[t], True, params.pre_exponents[t]),
            ("v", params.out_bits[t], True, squash_output_exponent(params.out_bits[t])),
        ]
        if t > 0:  # b[0] = 0 needs no format
            formats.insert(0, ("b", params.logit_bits[t - 1], True, params.logit_exponents[t - 1]))
        for symbol, bits, signed, exponent in formats:
            tensor = f"{symbol}[{t}]"
            points.append(
                QuantizationPoint(
                    f"{name}.{tensor}", "routing", bits, signed, exponent, elements[tensor] * rows
                )
            )
    return points
