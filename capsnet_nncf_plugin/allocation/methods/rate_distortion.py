"""Rate-distortion assignment: the error analysis prices every bit by the noise it adds per bit of memory
it saves, so big layers give up bits first; a binary search along that path needs few evaluations.

for kind in (weight, activation):
    path = [every layer's kind at its start width: 8 bits, or wider where 8 do not hold (SearchContext.start)]
    while some layer is above 2 bits:                      # no evaluation: error analysis only
        lower by one bit the layer whose next bit adds the least noise per bit of memory saved
        path.append(the allocation)
    keep the deepest allocation on the path that holds the tolerance   # binary search, ~log2(len(path)) evals

Noise is the layer-output noise power relative to the signal, 10^(-SQNR/10), as if layers' errors added at
the output; memory is the layer's weights (parameters) or its activations (elements per sample). Where the
error-guided method asks every layer for the same SQNR, this one lets a layer holding 20 % of the weights
go lower than a layer holding 0.2 % at the same cost in noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from capsnet_nncf_plugin.allocation.methods.context import (
    MIN_BITS,
    START_BITS,
    SearchContext,
    smallest_holding,
    widest,
)
from capsnet_nncf_plugin.allocation.sensitivity import ErrorAnalysis
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation


def noise_power(analysis: ErrorAnalysis, name: str, kind: str, bits: int) -> float:
    """Relative noise power of ``name``'s output with ``kind`` at ``bits``: 10^(-SQNR / 10)."""
    return 10.0 ** (-analysis.sqnr(name, kind, bits) / 10.0)


def descent_path(
    analysis: ErrorAnalysis, kind: str, costs: Mapping[str, int], start_bits: int = START_BITS
) -> list[dict[str, int]]:
    """Widths of ``kind`` per layer, from all at ``start_bits`` to all at 2, one bit of one layer per step.

    Each step lowers the layer with the least added noise per bit of memory saved (``costs``: elements of
    ``kind`` per layer); a layer of cost 0 saves nothing and is never lowered.
    """
    bits = {name: start_bits for name, cost in costs.items() if cost > 0}
    path = [dict(bits)]
    while any(width > MIN_BITS for width in bits.values()):

        def price(name: str) -> float:
            width = bits[name]
            added = noise_power(analysis, name, kind, width - 1) - noise_power(analysis, name, kind, width)
            return added / costs[name]

        cheapest = min((name for name, width in bits.items() if width > MIN_BITS), key=price)
        bits[cheapest] -= 1
        path.append(dict(bits))
    return path


def with_widths(allocation: BitAllocation, kind: str, widths: Mapping[str, int]) -> BitAllocation:
    for name, width in widths.items():
        allocation = allocation.with_layer(name, **{kind: width})
    return allocation


def deepest_holding(
    context: SearchContext, allocation: BitAllocation, kind: str, path: list[dict[str, int]]
) -> BitAllocation:
    """The furthest step of ``path`` that holds the tolerance (binary search; the start is not tested)."""
    last = len(path) - 1

    def holds(steps_back: int) -> bool:  # more steps back from the end: more bits, assumed to hold
        return context.holds(with_widths(allocation, kind, path[last - steps_back]))

    return with_widths(allocation, kind, path[last - smallest_holding(0, last, holds)])


def rate_distortion(context: SearchContext) -> BitAllocation:
    # A binary search along a path of about 6 steps per layer, per kind.
    kinds = ("weight", "activation")
    per_kind = {kind: math.ceil(math.log2(6 * max(len(context.names_with(kind)), 1) + 1)) for kind in kinds}
    context.expect(sum(per_kind.values()))
    allocation = context.start()
    for index, kind in enumerate(kinds):
        costs = context.elements(kind)
        start_bits = widest(allocation, context.names_with(kind), kind)
        path = descent_path(context.analysis, kind, costs, start_bits)
        context.expect(math.ceil(math.log2(len(path))) + sum(per_kind[k] for k in kinds[index + 1 :]))
        allocation = deepest_holding(context, allocation, kind, path)
    allocation.method = "rate-distortion"
    return allocation
