"""Approach 3, block-wise then routing: blocks (DeepCaps cells, ShallowCaps layers) as units, then the
dynamic-routing tensors one by one, per iteration.

    for kind in (weight, activation):
        u = smallest uniform width; set every layer's kind to u
        for block in blocks, least susceptible first (mean SQNR of its layers at u - 1):
            lower the whole block's kind one bit at a time while accuracy holds
    for routing layer, for tensor in (coupling c, logits b, pre-activation s, output v):
        binary-search the smallest width of that tensor at every iteration at once
        for iteration t: lower that tensor at t alone by one more bit if accuracy holds
"""

from __future__ import annotations

import statistics

from capsnet_nncf_plugin.allocation.bit_allocation import BitAllocation
from capsnet_nncf_plugin.allocation.layers import blocks
from capsnet_nncf_plugin.allocation.methods.context import (
    MAX_BITS,
    MIN_BITS,
    SearchContext,
    descend_layer,
    set_bits,
    smallest_holding,
    smallest_uniform,
)
from capsnet_nncf_plugin.fx.qconfig import RoutingBits

ROUTING_TENSORS = ("coupling", "logits", "pre_activation", "output")


def _routing_with(routing: RoutingBits, tensor: str, index: int, bits: int, count: int) -> RoutingBits:
    values = list(routing.per_iteration(tensor, count))
    values[index] = bits
    return RoutingBits(**{**routing.__dict__, tensor: tuple(values)})


def block_routing(context: SearchContext) -> BitAllocation:
    allocation = context.start()
    grouped = blocks(context.layers)
    for kind in ("weight", "activation"):
        names = context.names_with(kind)
        uniform = smallest_uniform(context, allocation, kind)
        allocation = set_bits(allocation, names, kind, uniform)
        probe = max(uniform - 1, MIN_BITS)

        members = {b: [layer.name for layer in grouped[b] if layer.name in names] for b in grouped}
        scores = {
            b: statistics.mean(min(context.analysis.sqnr(n, kind, probe), 1e6) for n in m)
            for b, m in members.items()
            if m
        }
        # Least susceptible (highest mean SQNR one bit below the uniform width) first.
        ordered = sorted(scores, key=lambda b: -scores[b])
        for block in ordered:
            allocation = descend_layer(context, allocation, members[block], kind)
    for layer in context.layers:
        if layer.routing:
            allocation = _lower_routing_tensors(context, allocation, layer.name)
    allocation.method = "block-routing"
    return allocation


def _lower_routing_tensors(context: SearchContext, allocation: BitAllocation, name: str) -> BitAllocation:
    """Each routing tensor of layer ``name``: the smallest width for all its iterations together (binary
    search), then one bit less at each single iteration where the tolerance still holds."""
    iterations = _iterations(context, name)
    for tensor in ROUTING_TENSORS:
        count = iterations - 1 if tensor == "logits" else iterations
        if count == 0:
            continue
        start = allocation

        def everywhere(bits: int, start=start, tensor=tensor) -> BitAllocation:
            routing = RoutingBits(**{**start.layers[name].routing.__dict__, tensor: bits})
            return start.with_layer(name, routing=routing)

        allocation = everywhere(
            smallest_holding(MIN_BITS, MAX_BITS, lambda b, make=everywhere: context.holds(make(b)))
        )
        for index in range(count):
            current = allocation.layers[name].routing.per_iteration(tensor, count)[index]
            if current <= MIN_BITS:
                continue
            routing = _routing_with(allocation.layers[name].routing, tensor, index, current - 1, count)
            candidate = allocation.with_layer(name, routing=routing)
            if context.holds(candidate):
                allocation = candidate
    return allocation


def _iterations(context: SearchContext, name: str) -> int:
    from capsnet_nncf_plugin.nn import DynamicRouting

    module = context.evaluator.model.get_submodule(name)
    routing = module if isinstance(module, DynamicRouting) else module.routing
    return routing.iterations
