"""Approach 2, error-guided assignment: widths straight from the error analysis, few evaluations.

start = 8 bits everywhere (activations wider where 8 bits do not hold, see SearchContext.start)
for kind in (weight, activation):
    for threshold in 12, 15, 18, ... dB:          # progressively tighter
        every layer's kind = smallest width whose output SQNR (kind alone) >= threshold, at most its start
        if accuracy holds: keep it, next kind
"""

from __future__ import annotations

from capsnet_nncf_plugin.allocation.bit_allocation import BitAllocation
from capsnet_nncf_plugin.allocation.methods.context import SearchContext, widest

FIRST_THRESHOLD_DB = 12.0
STEP_DB = 3.0
LAST_THRESHOLD_DB = 60.0


def error_guided(context: SearchContext) -> BitAllocation:
    allocation = context.start()
    for kind in ("weight", "activation"):
        names = context.names_with(kind)
        ceiling = widest(allocation, names, kind)
        threshold = FIRST_THRESHOLD_DB
        chosen = allocation
        while threshold <= LAST_THRESHOLD_DB:
            candidate = allocation
            for name in names:
                candidate = candidate.with_layer(
                    name, **{kind: context.analysis.smallest_bits(name, kind, threshold, ceiling)}
                )
            if context.holds(candidate):
                chosen = candidate
                break
            threshold += STEP_DB
        allocation = chosen
    allocation.method = "error-guided"
    return allocation
