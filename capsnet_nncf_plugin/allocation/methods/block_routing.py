"""Approach 3, block-wise then routing: blocks (DeepCaps cells, ShallowCaps layers) as units, then the
dynamic-routing tensors one by one, per iteration.

    for kind in (weight, activation):
        u = smallest uniform width; set every layer's kind to u
        for block in blocks, least susceptible first (the block's own output SQNR at u - 1):
            lower the whole block's kind one bit at a time while accuracy holds
    for routing layer, for tensor in (coupling c, logits b, pre-activation s, output v):
        binary-search the smallest width of that tensor at every iteration at once
        for iteration t in order:
            lower that tensor at t alone by one more bit if accuracy holds
"""

from __future__ import annotations

from capsnet_nncf_plugin.allocation.methods.context import (
    BINARY_SEARCH_ESTIMATE,
    MIN_BITS,
    START_BITS,
    SearchContext,
    descend_layer,
    descent_estimate,
    set_bits,
    smallest_holding,
    smallest_uniform,
)
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation

#: The order the routing tensors are lowered in: the coupling coefficients first.
SEARCH_ORDER = ("coupling", "logits", "pre_activation", "output")


def block_routing(context: SearchContext) -> BitAllocation:
    analysis = context.analysis
    routing_layers = [layer.name for layer in context.layers if layer.routing]

    def routing_estimate(layers: list[str]) -> int:  # a binary search, then each iteration, per tensor
        return sum(
            BINARY_SEARCH_ESTIMATE + analysis.iteration_count(name, tensor)
            for name in layers
            for tensor in SEARCH_ORDER
        )

    kinds = ("weight", "activation")
    blocks = len(analysis.blocks())
    context.expect(
        len(kinds) * (BINARY_SEARCH_ESTIMATE + descent_estimate(blocks)) + routing_estimate(routing_layers)
    )
    allocation = context.start()
    for index, kind in enumerate(kinds):
        names = context.names_with(kind)
        uniform = smallest_uniform(context, allocation, kind)
        allocation = set_bits(allocation, names, kind, uniform)
        probe = max(uniform - 1, MIN_BITS)
        ranking = analysis.block_ranking(kind, probe)
        for position, block in enumerate(ranking):
            later = (len(kinds) - index - 1) * (BINARY_SEARCH_ESTIMATE + descent_estimate(blocks))
            context.expect(
                descent_estimate(len(ranking) - position) + later + routing_estimate(routing_layers)
            )
            members = [name for name in analysis.blocks()[block] if name in names]
            allocation = descend_layer(context, allocation, members, kind)
    for position, name in enumerate(routing_layers):
        context.expect(routing_estimate(routing_layers[position:]))
        allocation = _lower_routing_tensors(context, allocation, name)
    allocation.method = "block-routing"
    return allocation


def _lower_routing_tensors(context: SearchContext, allocation: BitAllocation, name: str) -> BitAllocation:
    """Each routing tensor of layer ``name``: the smallest width for all its iterations together (binary
    search), then one bit less at each single iteration where the tolerance still holds."""
    for tensor in SEARCH_ORDER:
        count = context.analysis.iteration_count(name, tensor)
        if count == 0:
            continue
        start = allocation

        def everywhere(bits: int, start=start, tensor=tensor) -> BitAllocation:
            return start.with_layer(name, routing=start.layers[name].routing.with_tensor(tensor, bits))

        allocation = everywhere(
            smallest_holding(MIN_BITS, START_BITS, lambda b, make=everywhere: context.holds(make(b)))
        )
        for index in range(count):
            routing = allocation.layers[name].routing
            current = routing.per_iteration(tensor, count)[index]
            if current <= MIN_BITS:
                continue
            candidate = allocation.with_layer(
                name, routing=routing.with_entry(tensor, index, current - 1, count)
            )
            if context.holds(candidate):
                allocation = candidate
    return allocation
