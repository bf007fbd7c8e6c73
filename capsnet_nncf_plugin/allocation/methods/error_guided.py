"""Approach 2, error-guided assignment: widths straight from the error analysis, few evaluations.

for kind in (weight, activation):
    for threshold in 12, 15, 18, ... dB:          # progressively tighter
        every layer's kind = smallest width whose output SQNR (kind alone) >= threshold
        if accuracy holds: keep it, next kind
"""

from __future__ import annotations

from capsnet_nncf_plugin.allocation.bit_allocation import BitAllocation
from capsnet_nncf_plugin.allocation.methods.context import MAX_BITS, SearchContext, set_bits

FIRST_THRESHOLD_DB = 12.0
STEP_DB = 3.0
LAST_THRESHOLD_DB = 60.0


def error_guided(context: SearchContext) -> BitAllocation:
    allocation = context.uniform()
    for kind in ("weight", "activation"):
        names = context.names_with(kind)
        threshold = FIRST_THRESHOLD_DB
        chosen = set_bits(allocation, names, kind, MAX_BITS)
        while threshold <= LAST_THRESHOLD_DB:
            candidate = allocation
            for name in names:
                candidate = candidate.with_layer(
                    name, **{kind: context.analysis.smallest_bits(name, kind, threshold, MAX_BITS)}
                )
            if context.holds(candidate):
                chosen = candidate
                break
            threshold += STEP_DB
        allocation = chosen
    allocation.method = "error-guided"
    return allocation
