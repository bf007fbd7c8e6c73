"""Cached validation accuracy of quantized models, one evaluation per distinct allocation.

What "accuracy holds" means is the search's ``criterion``:

* ``"accuracy"``: validation accuracy at most ``tolerance`` pp below FP32;
* ``"losses"`` (default): that, and at most ``tolerance`` percent of the validation images that FP32
  classifies correctly are misclassified. Images the quantized model happens to get right where FP32 did
  not earn no credit: a search that counts them drifts toward allocations that were lucky on the
  validation split, and loses the difference on the test split.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from capsnet_nncf_plugin.allocation.bit_allocation import BitAllocation
from capsnet_nncf_plugin.evaluation import accuracy_of, predict
from capsnet_nncf_plugin.fx import quantize_fx

CRITERIA = ("losses", "accuracy")


@dataclass(frozen=True)
class Measurement:
    """A quantized model on the validation images."""

    accuracy: float  # percent
    lost: float  # percent of all images: FP32 right, quantized wrong


def check_criterion(criterion: str) -> str:
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    return criterion


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
        criterion: str = "losses",
    ) -> None:
        self.model = model.eval()
        self.calibration = list(calibration_batches)
        if not self.calibration:
            raise ValueError("the allocation search needs at least one calibration batch")
        self.validation = validation_data
        self.clip = clip
        self.limit = limit
        self.batch_size = batch_size
        self.criterion = check_criterion(criterion)
        self.cache: dict[tuple, Measurement] = {}
        self.evaluations = 0
        self.seconds = 0.0
        self.fp32_predictions, self.labels = predict(self.model, validation_data, batch_size, limit)
        self.fp32_accuracy = accuracy_of(self.fp32_predictions, self.labels)

    def clip_of(self, allocation: BitAllocation) -> str:
        """The allocation's own clipping mode (``info["clip"]``, set by methods that need one), else ours."""
        return str(allocation.info.get("clip", self.clip))

    def quantize(self, allocation: BitAllocation) -> torch.fx.GraphModule:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return quantize_fx(
                self.model, self.calibration, clip=self.clip_of(allocation), allocation=allocation
            )

    def measure(self, allocation: BitAllocation) -> Measurement:
        key = (allocation.key(), self.clip_of(allocation))
        if key not in self.cache:
            started = time.perf_counter()
            quantized = self.quantize(allocation)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                predictions, _ = predict(quantized, self.validation, self.batch_size, self.limit)
            fp32_right = self.fp32_predictions == self.labels
            lost = 100.0 * int((fp32_right & (predictions != self.labels)).sum()) / len(self.labels)
            self.cache[key] = Measurement(accuracy_of(predictions, self.labels), lost)
            self.evaluations += 1
            self.seconds += time.perf_counter() - started
        return self.cache[key]

    def accuracy(self, allocation: BitAllocation) -> float:
        return self.measure(allocation).accuracy

    def holds(self, allocation: BitAllocation, tolerance: float) -> bool:
        """Whether the allocation keeps accuracy within ``tolerance`` pp under the criterion (module doc)."""
        measured = self.measure(allocation)
        accuracy_holds = measured.accuracy >= self.fp32_accuracy - tolerance - 1e-9
        if self.criterion == "accuracy":
            return accuracy_holds
        return accuracy_holds and measured.lost <= tolerance + 1e-9
