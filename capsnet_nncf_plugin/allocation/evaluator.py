"""Cached validation accuracy of quantized models, one evaluation per distinct allocation."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable

import torch
from torch.utils.data import Dataset

from capsnet_nncf_plugin.allocation.bit_allocation import BitAllocation
from capsnet_nncf_plugin.evaluation import evaluate_accuracy
from capsnet_nncf_plugin.fx import quantize_fx


class AccuracyEvaluator:
    """Quantizes ``model`` with an allocation (FX flow, integer routing) and measures validation accuracy.

    Results are cached by allocation, so a search that revisits a configuration pays nothing;
    ``evaluations`` counts the distinct ones.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        calibration_batches: Iterable[torch.Tensor],
        validation_data: Dataset,
        clip: str = "hardware",
        limit: int | None = None,
        batch_size: int = 250,
    ) -> None:
        self.model = model.eval()
        self.calibration = list(calibration_batches)
        if not self.calibration:
            raise ValueError("the allocation search needs at least one calibration batch")
        self.validation = validation_data
        self.clip = clip
        self.limit = limit
        self.batch_size = batch_size
        self.cache: dict[tuple, float] = {}
        self.evaluations = 0
        self.seconds = 0.0
        self.fp32_accuracy = evaluate_accuracy(self.model, validation_data, batch_size, limit)

    def clip_of(self, allocation: BitAllocation) -> str:
        """The allocation's own clipping mode (``info["clip"]``, set by methods that need one), else ours."""
        return str(allocation.info.get("clip", self.clip))

    def quantize(self, allocation: BitAllocation) -> torch.fx.GraphModule:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return quantize_fx(
                self.model, self.calibration, clip=self.clip_of(allocation), allocation=allocation
            )

    def accuracy(self, allocation: BitAllocation) -> float:
        key = (allocation.key(), self.clip_of(allocation))
        if key not in self.cache:
            started = time.perf_counter()
            quantized = self.quantize(allocation)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.cache[key] = evaluate_accuracy(quantized, self.validation, self.batch_size, self.limit)
            self.evaluations += 1
            self.seconds += time.perf_counter() - started
        return self.cache[key]

    def holds(self, allocation: BitAllocation, tolerance: float) -> bool:
        """Whether the allocation loses at most ``tolerance`` percentage points against FP32."""
        return self.accuracy(allocation) >= self.fp32_accuracy - tolerance - 1e-9
