"""What every allocation method works with, and the search steps they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from tqdm.auto import tqdm

from capsnet_nncf_plugin.allocation.evaluator import AccuracyEvaluator
from capsnet_nncf_plugin.allocation.layers import Layer
from capsnet_nncf_plugin.allocation.memory import FLOAT_BITS
from capsnet_nncf_plugin.allocation.sensitivity import ErrorAnalysis
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.core.integer_format import MIN_BITS
from capsnet_nncf_plugin.quantized import quantization_points

#: The width every search starts from (and the widest a descent or a routing search tries): 8 bits.
START_BITS = 8
#: Activation widths tried, narrowest first, when 8 bits everywhere lose more than the tolerance: a model
#: whose activations need more than 8 bits somewhere still gets narrow weights and narrow other layers.
WIDER_ACTIVATION_BITS = (10, 12, 16)
WIDEST_BITS = WIDER_ACTIVATION_BITS[-1]


@dataclass
class SearchContext:
    layers: list[Layer]
    analysis: ErrorAnalysis
    evaluator: AccuracyEvaluator
    tolerance: float
    weight_memory_budget: float | None = None  # bits; None = no budget
    progress: bool = False

    def __post_init__(self) -> None:
        self._bar = tqdm(desc="allocation search", unit="eval", disable=not self.progress, leave=False)

    def holds(self, allocation: BitAllocation) -> bool:
        before = self.evaluator.evaluations
        result = self.evaluator.holds(allocation, self.tolerance)
        self._bar.update(self.evaluator.evaluations - before)
        if self._bar.total is not None and self._bar.n >= self._bar.total:
            self.expect(1)  # beyond the estimate: at least one more
        return result

    def expect(self, remaining: int) -> None:
        """The evaluations the search expects from here on (an estimate): the progress bar's total, from
        which it gives the time left at the seconds per evaluation so far."""
        self._bar.total = self._bar.n + max(int(remaining), 0)
        self._bar.refresh()

    def uniform(self) -> BitAllocation:
        return BitAllocation.uniform([layer.name for layer in self.layers])

    def start(self) -> BitAllocation:
        """Where the progressive methods descend from: 8 bits everywhere if that holds the tolerance, else
        activations at the narrowest of ``WIDER_ACTIVATION_BITS`` that holds (weights and routing at 8;
        the widest when none holds)."""
        allocation = self.uniform()
        activations = self.names_with("activation")
        for bits in WIDER_ACTIVATION_BITS:
            if not activations or self.holds(allocation):
                break
            allocation = set_bits(allocation, activations, "activation", bits)
        return allocation

    def names_with(self, kind: str) -> list[str]:
        return [layer.name for layer in self.layers if kind in self.analysis.kinds_of(layer.name)]

    def weight_elements(self, name: str) -> int:
        """How many weights layer ``name`` quantizes (its ``weight`` parameters)."""
        module = self.evaluator.model.get_submodule(name)
        return sum(p.numel() for n, p in module.named_parameters() if n.endswith("weight"))

    @cached_property
    def _weight_counts(self) -> tuple[dict[str, int], int]:
        """Weights per quantized layer, and how many parameters the model has in all (searches price
        thousands of candidates against them)."""
        counts = {name: self.weight_elements(name) for name in self.names_with("weight")}
        return counts, sum(p.numel() for p in self.evaluator.model.parameters())

    def elements(self, kind: str) -> dict[str, int]:
        """What each layer's ``kind`` width governs: its weights (parameters), or its activation elements
        per sample (from its quantization points), by layer name."""
        if kind == "weight":
            return dict(self._weight_counts[0])
        points = quantization_points(self.evaluator.quantized_model(self.uniform()))
        return {
            name: sum(
                p.elements_per_sample for p in points if p.kind == kind and p.name.startswith(f"{name}.")
            )
            for name in self.names_with(kind)
        }

    def weight_bits(self, allocation: BitAllocation) -> int:
        """Weights memory of ``allocation`` in bits, as ``memory_report`` counts it: quantized weights at
        their widths, every other parameter at 32 bits (what ``weight_memory_budget`` is compared with)."""
        counts, parameters = self._weight_counts
        quantized_bits = sum(count * allocation.layers[name].weight for name, count in counts.items())
        return quantized_bits + FLOAT_BITS * (parameters - sum(counts.values()))


def descent_estimate(layers: int) -> int:
    """Evaluations a one-bit-at-a-time descent of ``layers`` units usually takes: the step that fails each,
    and about one that holds."""
    return 2 * layers


#: Evaluations of a binary search over the widths 2..8.
BINARY_SEARCH_ESTIMATE = 3


def set_bits(allocation: BitAllocation, names: list[str], kind: str, bits: int) -> BitAllocation:
    """``allocation`` with ``kind`` (``weight``/``activation``) of every layer in ``names`` at ``bits``."""
    for name in names:
        allocation = allocation.with_layer(name, **{kind: bits})
    return allocation


def smallest_holding(low: int, high: int, holds: Callable[[int], bool]) -> int:
    """Binary search for the smallest width in ``[low, high]`` that holds, assuming accuracy is monotone in
    the width; ``high`` is returned untested when nothing lower holds."""
    while low < high:
        middle = (low + high) // 2
        if holds(middle):
            high = middle
        else:
            low = middle + 1
    return high


def widest(allocation: BitAllocation, names: list[str], kind: str) -> int:
    """The widest ``kind`` among the layers ``names`` (``START_BITS`` when there are none)."""
    return max((getattr(allocation.layers[name], kind) for name in names), default=START_BITS)


def smallest_uniform(context: SearchContext, allocation: BitAllocation, kind: str) -> int:
    """Smallest width that ``kind`` can take in every layer at once (the rest as in ``allocation``), up to
    the widest it has in ``allocation``, which is assumed to hold."""
    names = context.names_with(kind)
    return smallest_holding(
        MIN_BITS,
        widest(allocation, names, kind),
        lambda bits: context.holds(set_bits(allocation, names, kind, bits)),
    )


def descend_layer(
    context: SearchContext, allocation: BitAllocation, names: list[str], kind: str
) -> BitAllocation:
    """Lower ``kind`` of the layers ``names`` together, one bit at a time, while the tolerance holds."""
    while True:
        current = min(getattr(allocation.layers[name], kind) for name in names)
        if current <= MIN_BITS:
            return allocation
        candidate = set_bits(allocation, names, kind, current - 1)
        if not context.holds(candidate):
            return allocation
        allocation = candidate
