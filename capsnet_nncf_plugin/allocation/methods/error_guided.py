"""Approach 2, error-guided assignment: widths straight from the error analysis, few evaluations.

start = 8 bits everywhere (activations wider where 8 bits do not hold, see SearchContext.start)
for kind in (weight, activation):
    for threshold in 12, 15, 18, ... dB:          # progressively tighter
        every layer's kind = smallest width whose output SQNR (kind alone) >= threshold, at most its start
                              # any width 2..start: a layer 8 bits leave short gets 9 or 10, not all 12
        if accuracy holds: keep it, stop
    for layer in layers by memory of kind, largest first, until they hold half of it:  # not budgeted weights
        one bit less if accuracy holds                  # a few evaluations
for threshold in 26, 29, 32, ... dB:              # the dynamic routing, per tensor and iteration
    every routing tensor (b, c, s, v) of every iteration = smallest width whose routing-output SQNR
        (that tensor of that iteration alone) >= threshold + 10 log10(entries of the layer), at most 8
    if accuracy holds: keep it, stop

The routing entries are lowered together and their noise powers add: an entry alone must leave the layer
output ``10 log10(entries)`` dB cleaner than the threshold asks of all of them at once (ShallowCaps' class
capsules, 11 entries: 10.4 dB). Without that margin every entry of ShallowCaps' routing falls to 2-3 bits
at 12 dB, which held on 2,000 validation images and lost 0.14 pp on the test set; with it, 0.01-0.05 pp.

With a weight-memory budget the weights start at the tightest threshold whose weights fit the budget, and
the room left in it goes one bit at a time to the weights that lose most (lowest SQNR at their width): the
weights take the memory asked of them and leave the rest of the tolerance to the activations, which
otherwise find it spent on weights far below the budget. Tighter thresholds follow if that does not hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from capsnet_nncf_plugin.allocation.layers import Layer
from capsnet_nncf_plugin.allocation.methods.context import MIN_BITS, SearchContext, widest
from capsnet_nncf_plugin.allocation.sensitivity import ErrorAnalysis
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.core.bit_widths import ROUTING_TENSORS

FIRST_THRESHOLD_DB = 12.0
STEP_DB = 3.0
LAST_THRESHOLD_DB = 60.0
#: Layers holding half the memory of a kind, usually (the trims error-guided tries per kind).
TRIMS_ESTIMATE = 4
#: The routing thresholds start tighter: a routing layer's output is the class scores themselves.
FIRST_ROUTING_THRESHOLD_DB = 26.0


def _thresholds(first: float) -> list[float]:
    """``first``, ``first + STEP_DB``, ... up to ``LAST_THRESHOLD_DB``: progressively tighter."""
    return [first + step * STEP_DB for step in range(int((LAST_THRESHOLD_DB - first) / STEP_DB) + 1)]


THRESHOLDS_DB = _thresholds(FIRST_THRESHOLD_DB)
ROUTING_THRESHOLDS_DB = _thresholds(FIRST_ROUTING_THRESHOLD_DB)


def at_threshold(
    context: SearchContext, allocation: BitAllocation, kind: str, threshold: float, ceiling: int
) -> BitAllocation:
    """``allocation`` with every layer's ``kind`` at the smallest width (at most ``ceiling``) whose SQNR in
    the error analysis reaches ``threshold``."""
    for name in context.names_with(kind):
        bits = context.analysis.smallest_bits(name, kind, threshold, ceiling)
        allocation = allocation.with_layer(name, **{kind: bits})
    return allocation


def spend_budget(
    context: SearchContext, allocation: BitAllocation, budget: float, ceiling: int
) -> BitAllocation:
    """``allocation`` with the weight bits ``budget`` still has room for: one bit at a time to the layer whose
    weights lose most at their width (lowest SQNR), while the weights fit the budget. The 3 dB between two
    thresholds can leave a tenth of the budget unspent; spent, it is accuracy the activations can use."""
    while True:
        growable = [
            name
            for name in context.names_with("weight")
            if allocation.layers[name].weight < ceiling
            and context.weight_bits(allocation.with_layer(name, weight=allocation.layers[name].weight + 1))
            <= budget
        ]
        if not growable:
            return allocation
        name = min(growable, key=lambda n: context.analysis.sqnr(n, "weight", allocation.layers[n].weight))
        allocation = allocation.with_layer(name, weight=allocation.layers[name].weight + 1)


def budgeted_weights(
    context: SearchContext, allocation: BitAllocation, budget: float, ceiling: int
) -> list[BitAllocation]:
    """The weights' candidates under ``budget``, in the order they are tried: the tightest threshold that
    fits, with the rest of the budget spent, then the tighter thresholds (over it) in case it does not
    hold; every threshold when none fits."""
    candidates = [at_threshold(context, allocation, "weight", t, ceiling) for t in THRESHOLDS_DB]
    fitting = [index for index, c in enumerate(candidates) if context.weight_bits(c) <= budget]
    if not fitting:
        return candidates
    tightest = max(fitting)
    return [spend_budget(context, candidates[tightest], budget, ceiling), *candidates[tightest + 1 :]]


def trim_largest(context: SearchContext, allocation: BitAllocation, kind: str) -> BitAllocation:
    """``allocation`` with one bit less of ``kind``, where accuracy still holds, in each of the layers that
    hold the most of its memory (largest first, until they hold half of it).

    One threshold asks the same SQNR of every layer whatever its size. In DeepCaps a quarter of the
    activation memory is the class capsules' votes and another quarter the stem's two outputs, so one bit
    off each of them is worth more than one bit off all twelve middle layers; a few evaluations test it.
    """
    elements = context.elements(kind)
    covered, half = 0, sum(elements.values()) / 2
    for name in sorted(elements, key=elements.get, reverse=True):
        if covered >= half:
            break
        covered += elements[name]
        bits = getattr(allocation.layers[name], kind)
        if bits > MIN_BITS:
            candidate = allocation.with_layer(name, **{kind: bits - 1})
            allocation = candidate if context.holds(candidate) else allocation
    return allocation


def routing_at_threshold(
    layers: Sequence[Layer],
    analysis: ErrorAnalysis,
    allocation: BitAllocation,
    threshold: float,
    noise_margin: bool = True,
) -> BitAllocation:
    """``allocation`` with each routing tensor of each iteration of every routing layer at the smallest
    width (at most its width in ``allocation``) whose routing-output SQNR in the error analysis reaches
    ``threshold`` plus the margin of its entries' added noise (module doc): the dynamic-routing
    granularity of the paper, one width per tensor and iteration. ``noise_margin=False`` asks each entry
    for ``threshold`` alone (benchmarks/routing_thresholds.py compares both)."""
    for layer in layers:
        if not layer.routing:
            continue
        routing = allocation.layers[layer.name].routing
        entries = sum(analysis.iteration_count(layer.name, tensor) for tensor in ROUTING_TENSORS)
        entry_threshold = threshold + (10 * math.log10(max(entries, 1)) if noise_margin else 0.0)
        for tensor in ROUTING_TENSORS:
            count = analysis.iteration_count(layer.name, tensor)
            for index in range(count):
                current = routing.per_iteration(tensor, count)[index]
                bits = analysis.smallest_iteration_bits(layer.name, tensor, index, entry_threshold, current)
                if bits != current:  # unchanged entries keep their form, so an unchanged allocation is equal
                    routing = routing.with_entry(tensor, index, bits, count)
        allocation = allocation.with_layer(layer.name, routing=routing)
    return allocation


def lower_routing(context: SearchContext, allocation: BitAllocation) -> BitAllocation:
    """The first (loosest) threshold whose routing widths hold, else ``allocation`` as it is."""
    for threshold in ROUTING_THRESHOLDS_DB:
        candidate = routing_at_threshold(context.layers, context.analysis, allocation, threshold)
        if candidate.key() == allocation.key():  # tighter thresholds lower nothing either
            return allocation
        if context.holds(candidate):
            return candidate
    return allocation


def error_guided(context: SearchContext) -> BitAllocation:
    # Usually: two thresholds and a few trims per kind (7 on ShallowCaps, 23 on DeepCaps in all).
    context.expect(2 * (2 + TRIMS_ESTIMATE) + 2)
    allocation = context.start()
    for index, kind in enumerate(("weight", "activation")):
        context.expect((2 - index) * (2 + TRIMS_ESTIMATE) + 2)
        ceiling = widest(allocation, context.names_with(kind), kind)
        budget = context.weight_memory_budget
        budgeted = kind == "weight" and budget is not None
        if budgeted:
            candidates = budgeted_weights(context, allocation, budget, ceiling)
        else:
            candidates = (at_threshold(context, allocation, kind, t, ceiling) for t in THRESHOLDS_DB)
        found = next((c for c in candidates if context.holds(c)), None)
        if found is not None:
            # Under a budget the weights keep what it allows: the tolerance left is the activations'.
            allocation = found if budgeted else trim_largest(context, found, kind)
    if any(layer.routing for layer in context.layers):
        context.expect(2)
        allocation = lower_routing(context, allocation)
    allocation.method = "error-guided"
    return allocation
