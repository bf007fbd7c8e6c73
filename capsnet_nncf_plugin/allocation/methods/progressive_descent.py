"""Approach 1, layer-wise progressive descent.

for kind in (weight, activation):                 # weights first, then activations
    u = smallest uniform width of kind that keeps accuracy within the tolerance
    set every layer's kind to u
    for layer in layers, least susceptible first (highest SQNR at u - 1 in the error analysis):
        while layer.kind > 2 and lowering it by one bit keeps the tolerance:
            lower it
"""

from __future__ import annotations

from capsnet_nncf_plugin.allocation.methods.context import (
    BINARY_SEARCH_ESTIMATE,
    MIN_BITS,
    SearchContext,
    descend_layer,
    descent_estimate,
    set_bits,
    smallest_uniform,
)
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation


def progressive_descent(context: SearchContext) -> BitAllocation:
    kinds = ("weight", "activation")

    def expected(rest: tuple[str, ...]) -> int:  # the evaluations the kinds ``rest`` usually take
        return sum(BINARY_SEARCH_ESTIMATE + descent_estimate(len(context.names_with(k))) for k in rest)

    context.expect(expected(kinds))
    allocation = context.start()
    for kind in kinds:
        uniform = smallest_uniform(context, allocation, kind)
        allocation = set_bits(allocation, context.names_with(kind), kind, uniform)
        ranking = context.analysis.ranking(kind, max(uniform - 1, MIN_BITS))
        for index, name in enumerate(ranking):
            context.expect(descent_estimate(len(ranking) - index) + expected(kinds[kinds.index(kind) + 1 :]))
            allocation = descend_layer(context, allocation, [name], kind)
    allocation.method = "progressive-descent"
    return allocation
