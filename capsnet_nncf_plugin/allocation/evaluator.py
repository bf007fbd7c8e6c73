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

from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.core.settings import QuantizationSettings
from capsnet_nncf_plugin.evaluation import EVALUATION_BATCH, accuracy_of, iterate_batches, predict
from capsnet_nncf_plugin.fx import SharedCalibration, quantize_fx

CRITERIA = ("losses", "accuracy")


@dataclass(frozen=True)
class Measurement:
    """A quantized model on the validation images."""

    accuracy: float  # percent of the images evaluated
    lost: float  # percent of all validation images: FP32 right, quantized wrong
    images: int = 0  # images evaluated; fewer than the validation set when the evaluation stopped early
    failed_at_tolerance: float | None = None  # set when stopped early: fails every tolerance up to this

    @property
    def complete(self) -> bool:
        return self.failed_at_tolerance is None


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
        settings: QuantizationSettings | None = None,
        limit: int | None = None,
        batch_size: int = EVALUATION_BATCH,
        criterion: str = "losses",
    ) -> None:
        self.model = model.eval()
        self.calibration = list(calibration_batches)
        if not self.calibration:
            raise ValueError("the allocation search needs at least one calibration batch")
        self.validation = validation_data
        self.settings = settings or QuantizationSettings()
        self.limit = limit
        self.batch_size = batch_size
        self.criterion = check_criterion(criterion)
        self.cache: dict[tuple, Measurement] = {}
        self._latest: tuple[tuple, torch.fx.GraphModule] | None = None
        # One calibration per clipping mode and rounding serves every allocation without bias correction.
        self._shared: dict[QuantizationSettings, SharedCalibration] = {}
        self.evaluations = 0
        self.seconds = 0.0
        self.fp32_predictions, self.labels = predict(self.model, validation_data, batch_size, limit)
        self.fp32_accuracy = accuracy_of(self.fp32_predictions, self.labels)

    def settings_of(self, allocation: BitAllocation) -> QuantizationSettings:
        """The allocation's own settings (a baseline sets its own), else the search's."""
        return allocation.resolved_settings(self.settings)

    def quantize(self, allocation: BitAllocation) -> torch.fx.GraphModule:
        """The integer model of ``allocation``: what ``quantize_fx`` builds, the calibration shared."""
        settings = self.settings_of(allocation)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if settings.bias_correction:
                return quantize_fx(
                    self.model,
                    self.calibration,
                    clip=settings.clip,
                    allocation=allocation,
                    bias_correction=True,
                    weight_rounding=settings.weight_rounding,
                )
            if settings not in self._shared:
                self._shared[settings] = SharedCalibration(
                    self.model, self.calibration, clip=settings.clip, weight_rounding=settings.weight_rounding
                )
            return self._shared[settings].quantize(allocation)

    def _key(self, allocation: BitAllocation) -> tuple:
        return allocation.key()[0], self.settings_of(allocation)

    def quantized_model(self, allocation: BitAllocation) -> torch.fx.GraphModule:
        """The integer model of ``allocation``; the one measured last is kept, so asking for it is free."""
        key = self._key(allocation)
        if self._latest is None or self._latest[0] != key:
            self._latest = (key, self.quantize(allocation))
        return self._latest[1]

    def measure(self, allocation: BitAllocation) -> Measurement:
        """Accuracy and losses of ``allocation`` on every validation image."""
        return self._measure(allocation, stop_beyond=None)

    def _measure(self, allocation: BitAllocation, stop_beyond: float | None) -> Measurement:
        key = self._key(allocation)
        cached = self.cache.get(key)
        if cached is not None and (
            cached.complete or (stop_beyond is not None and stop_beyond <= cached.failed_at_tolerance)
        ):
            return cached
        started = time.perf_counter()
        quantized = self.quantized_model(allocation)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            measured = self._run(quantized, stop_beyond)
        self.cache[key] = measured
        self.evaluations += cached is None
        self.seconds += time.perf_counter() - started
        return measured

    @torch.no_grad()
    def _run(self, quantized: torch.nn.Module, stop_beyond: float | None) -> Measurement:
        """Count right and lost images batch by batch; stop once ``stop_beyond`` pp is surely exceeded."""
        total = len(self.labels)
        fp32_right = self.fp32_predictions == self.labels
        allowed_lost = allowed_wrong = None
        if stop_beyond is not None:
            allowed_lost = stop_beyond / 100 * total + 1e-9
            allowed_wrong = (100 - self.fp32_accuracy + stop_beyond) / 100 * total + 1e-9
        right = lost = seen = 0
        for images, labels in iterate_batches(self.validation, self.batch_size, total):
            predictions = quantized(images).argmax(dim=1)
            right += int((predictions == labels).sum())
            lost += int((fp32_right[seen : seen + len(labels)] & (predictions != labels)).sum())
            seen += len(labels)
            wrong = seen - right
            settled = allowed_wrong is not None and (
                wrong > allowed_wrong or (self.criterion == "losses" and lost > allowed_lost)
            )
            if settled and seen < total:
                return Measurement(100.0 * right / seen, 100.0 * lost / total, seen, stop_beyond)
        return Measurement(100.0 * right / total, 100.0 * lost / total, total)

    def accuracy(self, allocation: BitAllocation) -> float:
        return self.measure(allocation).accuracy

    def holds(self, allocation: BitAllocation, tolerance: float) -> bool:
        """Whether the allocation keeps accuracy within ``tolerance`` pp under the criterion (module doc)."""
        measured = self._measure(allocation, stop_beyond=tolerance)
        if not measured.complete:
            return False
        accuracy_holds = measured.accuracy >= self.fp32_accuracy - tolerance - 1e-9
        if self.criterion == "accuracy":
            return accuracy_holds
        return accuracy_holds and measured.lost <= tolerance + 1e-9
