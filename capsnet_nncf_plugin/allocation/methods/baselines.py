"""Baselines in the same framework: uniform 8-bit, and Q-CapsNets (Marchisio et al., DAC 2020).

Q-CapsNets, re-implemented from its paper, with round-to-nearest and saturation, no range clipping
(``clip="minmax"``) and no bias correction (``qcapsnets``), or with the run's own clipping and weight
rounding (``qcapsnets-clipped``: the same search on our quantizers, so that a comparison separates the
method from the clipping rule):

    1. layer-uniform: the smallest width Q (up to 16) for weights and activations together that keeps
       accuracy
    2. memory-budget fulfilment: weights decrease toward the output, layer l gets Q - l * step (>= 2), with
       the smallest step that fits the weight-memory budget (no budget: step 1 if accuracy holds, else 0)
    3. layer-wise activation reduction: from the first layer on, lower its activation while accuracy holds
    4. dynamic-routing reduction: the smallest width of all routing tensors together that keeps accuracy
"""

from __future__ import annotations

from capsnet_nncf_plugin.allocation.methods.context import (
    BINARY_SEARCH_ESTIMATE,
    MIN_BITS,
    START_BITS,
    WIDEST_BITS,
    SearchContext,
    descend_layer,
    descent_estimate,
    set_bits,
    smallest_holding,
)
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.core.bit_widths import RoutingBits
from capsnet_nncf_plugin.core.settings import QuantizationSettings

QCAPSNETS_CLIP = "minmax"
QCAPSNETS_SETTINGS = QuantizationSettings(
    clip=QCAPSNETS_CLIP, bias_correction=False, weight_rounding="nearest"
)


def uniform_8(context: SearchContext) -> BitAllocation:
    context.expect(1)
    allocation = context.uniform()
    context.holds(allocation)  # measured, so the report has its accuracy
    allocation.method = "uniform-8"
    return allocation


def qcapsnets(context: SearchContext) -> BitAllocation:
    # Every candidate derived from it quantizes as Q-CapsNets does: no clipping, no bias correction,
    # round-to-nearest.
    return qcapsnets_search(context, context.uniform().with_settings(QCAPSNETS_SETTINGS), "qcapsnets")


def qcapsnets_clipped(context: SearchContext) -> BitAllocation:
    # The run's own quantization settings (clipping, weight rounding) under Q-CapsNets' search.
    return qcapsnets_search(context, context.uniform(), "qcapsnets-clipped")


def qcapsnets_search(context: SearchContext, allocation: BitAllocation, method: str) -> BitAllocation:
    """Q-CapsNets' four steps (module doc) from ``allocation``, whose settings every candidate keeps."""
    weights, activations = context.names_with("weight"), context.names_with("activation")
    # A binary search over 2..16, the decreasing weights, each activation's descent, the routing search.
    context.expect(4 + 1 + descent_estimate(len(activations)) + BINARY_SEARCH_ESTIMATE)

    def uniform(bits: int) -> BitAllocation:
        return set_bits(set_bits(allocation, weights, "weight", bits), activations, "activation", bits)

    q = smallest_holding(MIN_BITS, WIDEST_BITS, lambda bits: context.holds(uniform(bits)))
    allocation = uniform(q)

    def decreasing(step: int) -> BitAllocation:
        result = allocation
        for index, name in enumerate(weights):
            result = result.with_layer(name, weight=max(q - index * step, MIN_BITS))
        return result

    if context.weight_memory_budget is not None:
        step = 0
        while context.weight_bits(decreasing(step)) > context.weight_memory_budget and step < START_BITS:
            step += 1
        allocation = decreasing(step)
    elif len(weights) > 1 and context.holds(decreasing(1)):
        allocation = decreasing(1)
    for index, name in enumerate(activations):
        context.expect(descent_estimate(len(activations) - index) + BINARY_SEARCH_ESTIMATE)
        allocation = descend_layer(context, allocation, [name], "activation")
    routing_layers = [layer.name for layer in context.layers if layer.routing]

    def with_routing(bits: int) -> BitAllocation:
        result = allocation
        for name in routing_layers:
            result = result.with_layer(name, routing=RoutingBits.from_dict(bits))
        return result

    if routing_layers:
        allocation = with_routing(
            smallest_holding(MIN_BITS, START_BITS, lambda b: context.holds(with_routing(b)))
        )
    allocation.method = method
    return allocation
