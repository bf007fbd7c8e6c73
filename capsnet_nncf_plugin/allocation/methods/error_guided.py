"""Approach 2, error-guided assignment: widths straight from the error analysis, few evaluations.

start = 8 bits everywhere (activations wider where 8 bits do not hold, see SearchContext.start)
for kind in (weight, activation):
    for threshold in 12, 15, 18, ... dB:          # progressively tighter
        every layer's kind = smallest width whose output SQNR (kind alone) >= threshold, at most its start
                              # any width 2..start: a layer 8 bits leave short gets 9 or 10, not all 12
        if accuracy holds: keep it, stop
    for layer in layers by memory of kind, largest first, until they hold half of it:  # not budgeted weights
        one bit less if accuracy holds                  # a few evaluations

With a weight-memory budget the weights start at the tightest threshold whose weights fit the budget, and
the room left in it goes one bit at a time to the weights that lose most (lowest SQNR at their width): the
weights take the memory asked of them and leave the rest of the tolerance to the activations, which
otherwise find it spent on weights far below the budget. Tighter thresholds follow if that does not hold.
"""

from __future__ import annotations

from capsnet_nncf_plugin.allocation.methods.context import MIN_BITS, SearchContext, widest
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation

FIRST_THRESHOLD_DB = 12.0
STEP_DB = 3.0
LAST_THRESHOLD_DB = 60.0
#: Layers holding half the memory of a kind, usually (the trims error-guided tries per kind).
TRIMS_ESTIMATE = 4
THRESHOLDS_DB = [
    FIRST_THRESHOLD_DB + step * STEP_DB
    for step in range(int((LAST_THRESHOLD_DB - FIRST_THRESHOLD_DB) / STEP_DB) + 1)
]


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


def error_guided(context: SearchContext) -> BitAllocation:
    # Usually: two thresholds and a few trims per kind (7 on ShallowCaps, 23 on DeepCaps in all).
    context.expect(2 * (2 + TRIMS_ESTIMATE))
    allocation = context.start()
    for index, kind in enumerate(("weight", "activation")):
        context.expect((2 - index) * (2 + TRIMS_ESTIMATE))
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
    allocation.method = "error-guided"
    return allocation
