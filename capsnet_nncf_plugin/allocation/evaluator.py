"""Cached validation accuracy of quantized models, one evaluation per distinct allocation.

What "accuracy holds" means is the search's ``criterion``:

* ``"losses"`` (the default, see defaults.py): validation accuracy at most ``tolerance`` pp below FP32,
  and at most ``tolerance`` percent of the validation images that FP32 classifies correctly are
  misclassified. Images the quantized model happens to get right where FP32 did not earn no credit: a
  search that counts them drifts toward allocations that were lucky on the validation split, and loses
  the difference on the test split;
* ``"accuracy"``: validation accuracy at most ``tolerance`` pp below FP32;
* ``"accuracy-margin"``: validation accuracy at most half the tolerance below FP32. The other half is the
  margin for the images the search never sees: a search that spends the whole tolerance on the
  validation images spends it on their noise too (shallowcaps-mnist: an allocation 0.06 pp below FP32 on
  all 5,000 validation images lost 0.18 pp on the test split).

How a candidate is evaluated, fast and exactly (``fast=True``, the default; docs/allocation.md, "Search
speed"): the integer model of the allocation (``SharedCalibration``: one calibration for every candidate)
runs on the validation batches with

* the integer squash and routing of the native library (``native_kernels``), the same integers as the torch
  reference ten times faster on routing;
* the activations of the prefix it shares with a candidate evaluated before taken from a cache
  (``prefix_cache``): a candidate that changes the class capsules alone runs the class capsules alone;
* the validation images in the order of FP32's margin (top score minus the second), smallest first: the
  images a quantized model loses are mostly the ones FP32 nearly lost, so a failing candidate exceeds the
  tolerance, and stops, within its first batches. Each image's prediction does not depend on the batch it
  is in, so a candidate measured to the end scores the same whatever the order;
* batches stopping as soon as the candidate has lost more images than the tolerance allows.

An evaluator also shares, with the next one built on the same model, calibration and validation images
(the next method of ``capsq quantize --compare``, the uniform-8 baseline beside a search), the FP32
predictions, the calibration statistics, the cached prefixes and the measurements themselves
(:func:`shared_state`).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import torch
from torch.utils.data import Dataset

from capsnet_nncf_plugin.allocation.defaults import DEFAULT_CRITERION
from capsnet_nncf_plugin.allocation.native_kernels import native_kernels
from capsnet_nncf_plugin.allocation.prefix_cache import PrefixCache, PrefixRunner, choose_cuts
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.core.settings import QuantizationSettings
from capsnet_nncf_plugin.evaluation import EVALUATION_BATCH, accuracy_of, iterate_batches
from capsnet_nncf_plugin.fingerprint import measurement_fingerprint, tensor_digest
from capsnet_nncf_plugin.fx import SharedCalibration, quantize_fx
from capsnet_nncf_plugin.measurement_store import MeasurementStore

logger = logging.getLogger(__name__)

#: Bytes of activations the prefix cache keeps by default (DeepCaps: 46 KB per image at its cuts, so
#: about five candidates of 2,000 images).
PREFIX_CACHE_BYTES = 512 * 2**20
#: The cuts may take this share of the cache per candidate, so that several candidates fit.
CANDIDATES_PER_CACHE = 5

CRITERIA = ("losses", "accuracy", "accuracy-margin")
#: The store's kind of FP32's predictions and margins on the validation images, and its layout version.
FP32_VALIDATION = "fp32-validation"
FP32_VALIDATION_FORMAT = 1
#: The share of the tolerance ``accuracy-margin`` lets the validation images spend.
MARGIN_SHARE = 0.5


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


@dataclass
class EvaluationCost:
    """Where a search's candidate evaluations spent their wall-clock time.

    A candidate that holds must be scored on every validation image, or a decision could change; one that
    fails stops as soon as it has lost more images than the tolerance allows, mostly within its first batch
    (the images come smallest FP32 margin first). So a search's time is mostly its ``complete`` evaluations,
    each as long as the part of the network after the first layer it changes (the rest comes from the
    prefix cache). ``build_seconds``: turning allocations into integer models.
    """

    complete: int = 0
    complete_seconds: float = 0.0
    stopped: int = 0
    stopped_seconds: float = 0.0
    stopped_images: int = 0
    build_seconds: float = 0.0

    def add(self, measured: Measurement, run_seconds: float, build_seconds: float) -> None:
        """Count one evaluation that ran (a measurement read from a cache costs nothing)."""
        self.build_seconds += build_seconds
        if measured.complete:
            self.complete += 1
            self.complete_seconds += run_seconds
        else:
            self.stopped += 1
            self.stopped_seconds += run_seconds
            self.stopped_images += measured.images

    def describe(self) -> str:
        """One line for a report: what ran, and how long each part took."""
        return (
            f"{self.complete} scored on every image ({self.complete_seconds:.0f} s), "
            f"{self.stopped} stopped early after {self.stopped_images:,} images in all "
            f"({self.stopped_seconds:.0f} s), building them {self.build_seconds:.0f} s"
        )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def check_criterion(criterion: str) -> str:
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    return criterion


@torch.no_grad()
def fp32_pass(
    model: torch.nn.Module,
    dataset: Dataset,
    batch_size: int,
    limit: int | None,
    store: MeasurementStore | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """FP32's predictions on the first ``limit`` images, their labels, FP32's margins (top score minus the
    second) and the images, all in the dataset's order. ``store``: predictions and margins read back
    from it when kept for the same model, code and images, and kept in it otherwise."""
    batches = list(iterate_batches(dataset, batch_size, limit))
    if not batches:
        raise ValueError("cannot evaluate on an empty dataset")
    images = torch.cat([batch for batch, _ in batches])
    labels = torch.cat([batch_labels for _, batch_labels in batches])
    fingerprint = None
    if store is not None:
        described = [FP32_VALIDATION, FP32_VALIDATION_FORMAT, batch_size]
        fingerprint = measurement_fingerprint(model, [("images", images), ("labels", labels)], described)
        kept = store.read_tensors(FP32_VALIDATION, fingerprint)
        if kept is not None and _fits(kept, len(labels)):
            logger.info("FP32 on the %d validation images: read back (--reuse-dir)", len(labels))
            return kept["predictions"], labels, kept["margins"], images
    predictions, margins = [], []
    for start in range(0, len(images), batch_size):
        scores = model(images[start : start + batch_size])
        top = scores.topk(min(2, scores.shape[1]), dim=1).values
        predictions.append(scores.argmax(dim=1))
        margins.append(top[:, 0] - top[:, -1])
    predictions, margins = torch.cat(predictions), torch.cat(margins)
    if fingerprint is not None:
        store.write_tensors(FP32_VALIDATION, fingerprint, {"predictions": predictions, "margins": margins})
    return predictions, labels, margins, images


def _fits(kept: dict[str, torch.Tensor], count: int) -> bool:
    """Whether kept FP32 results are predictions and margins of ``count`` images."""
    predictions, margins = kept.get("predictions"), kept.get("margins")
    return (
        predictions is not None
        and margins is not None
        and predictions.shape == (count,)
        and margins.shape == (count,)
        and predictions.dtype == torch.int64
        and margins.dtype.is_floating_point
        and bool(torch.isfinite(margins).all())
    )


@dataclass
class SharedState:
    """What the evaluators of one model, calibration and validation set share (see the module doc).

    ``fp32_predictions`` and ``labels`` in the dataset's order; ``order``: the order the candidates see
    the images in (smallest FP32 margin first), ``images``: the images in that order.
    """

    fp32_predictions: torch.Tensor
    labels: torch.Tensor
    order: torch.Tensor
    images: torch.Tensor
    calibrations: dict[QuantizationSettings, SharedCalibration] = field(default_factory=dict)
    measurements: dict[tuple, Measurement] = field(default_factory=dict)
    prefix_cache: PrefixCache | None = None
    cuts: list[str] | None = None
    # The model and the dataset whose ids are in the key: held, so that the ids cannot name others.
    anchors: tuple = ()


#: The state of the last evaluator built (one: a job searches one model at a time).
_shared: dict[tuple, SharedState] = {}


def shared_state(key: tuple, create) -> SharedState:
    """The state stored under ``key``, or ``create()``'s, which replaces whatever was stored."""
    if key not in _shared:
        _shared.clear()
        _shared[key] = create()
    return _shared[key]


def clear_shared_state() -> None:
    """Forget every evaluator's shared state (its memory: the prefix cache, the calibrations)."""
    _shared.clear()


class AccuracyEvaluator:
    """Quantizes ``model`` with an allocation (FX flow, integer routing) and measures validation accuracy.

    Results are cached by allocation, so a search that revisits a configuration pays nothing;
    ``evaluations`` counts the distinct ones. ``fast``: native kernels and the prefix cache (module doc);
    ``False`` runs each candidate's torch integer model as it is, on every batch it evaluates (the same
    predictions, bit for bit). ``prefix_cache_bytes``: the cache's budget. ``share``: take and leave the
    state of an evaluator of the same model, calibration and validation images (module doc). ``store``:
    where FP32's pass over the validation images is kept across runs (``fp32_pass``).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        calibration_batches: Iterable[torch.Tensor],
        validation_data: Dataset,
        settings: QuantizationSettings | None = None,
        limit: int | None = None,
        batch_size: int = EVALUATION_BATCH,
        criterion: str = DEFAULT_CRITERION,
        fast: bool = True,
        prefix_cache_bytes: int = PREFIX_CACHE_BYTES,
        share: bool = True,
        store: MeasurementStore | None = None,
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
        self.fast = fast
        self.prefix_cache_bytes = prefix_cache_bytes
        self.store = store
        self.cache: dict[tuple, Measurement] = {}
        self._latest: tuple[tuple, torch.fx.GraphModule] | None = None
        self.evaluations = 0
        self.images_evaluated = 0  # validation images run through a candidate (early stops count less)
        self.images_from_prefix = 0  # of those, images that started at a cached cut
        self.cost = EvaluationCost()
        # A subclass quantizing its own way cannot share measurements with the plain evaluator.
        if share and type(self).quantize is AccuracyEvaluator.quantize:
            key = (
                id(self.model),
                tensor_digest(self.model.state_dict().items()),
                tensor_digest((str(index), batch) for index, batch in enumerate(self.calibration)),
                id(validation_data),
                len(validation_data),
                limit,
                batch_size,
            )
            self.state = shared_state(key, self._new_state)
        else:
            self.state = self._new_state()
        # One calibration per clipping mode and rounding serves every allocation without bias correction.
        self._shared = self.state.calibrations
        self.fp32_predictions, self.labels = self.state.fp32_predictions, self.state.labels
        self.fp32_accuracy = accuracy_of(self.fp32_predictions, self.labels)

    def _new_state(self) -> SharedState:
        predictions, labels, margins, images = fp32_pass(
            self.model, self.validation, self.batch_size, self.limit, self.store
        )
        order = torch.sort(margins, stable=True).indices
        return SharedState(predictions, labels, order, images[order], anchors=(self.model, self.validation))

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
                # The search only runs its candidates: they may share the modules they have in common.
                self._shared[settings] = SharedCalibration(
                    self.model,
                    self.calibration,
                    clip=settings.clip,
                    weight_rounding=settings.weight_rounding,
                    share_modules=True,
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

    def measure(self, allocation: BitAllocation, stop_beyond: float | None = None) -> Measurement:
        """Accuracy and losses of ``allocation`` on every validation image; with ``stop_beyond`` (pp), only
        until the allocation surely fails the criterion at that tolerance (then not ``complete``)."""
        return self._measure(allocation, stop_beyond)

    def _cached(self, key: tuple) -> Measurement | None:
        """This search's measurement of ``key``, or one an evaluator sharing the state made (same criterion:
        an early stop depends on it)."""
        return self.cache.get(key) or self.state.measurements.get((self.criterion, key))

    def _measure(self, allocation: BitAllocation, stop_beyond: float | None) -> Measurement:
        key = self._key(allocation)
        cached = self._cached(key)
        settled = cached is not None and (
            cached.complete or (stop_beyond is not None and stop_beyond <= cached.failed_at_tolerance)
        )
        if settled:
            if key not in self.cache:  # another search measured it: this search needed it all the same
                self.cache[key] = cached
                self.evaluations += 1
            return cached
        started = time.perf_counter()
        quantized = self.quantized_model(allocation)
        built = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            measured = self._run(quantized, stop_beyond)
        finished = time.perf_counter()
        self.evaluations += key not in self.cache
        self.cache[key] = measured
        self.state.measurements[(self.criterion, key)] = measured
        self.cost.add(measured, run_seconds=finished - built, build_seconds=built - started)
        return measured

    def _forward(self, quantized: torch.nn.Module):
        """``(batch, images) -> scores`` of ``quantized``, the fast way (module doc) or the plain one."""
        if not self.fast or not isinstance(quantized, torch.fx.GraphModule):
            return lambda batch, images: quantized(images)
        if self.state.prefix_cache is None:
            self.state.prefix_cache = PrefixCache(self.prefix_cache_bytes)
        runner = PrefixRunner(quantized, self.state.prefix_cache)
        if self.state.cuts is None:
            seconds, sizes = runner.profile(self.state.images[: self.batch_size])
            allowance = self.prefix_cache_bytes / (len(self.labels) * CANDIDATES_PER_CACHE)
            self.state.cuts = choose_cuts(seconds, sizes, allowance)
            logger.debug("prefix cache cuts: %s", self.state.cuts)
        cuts = self.state.cuts

        def forward(batch: int, images: torch.Tensor) -> torch.Tensor:
            scores = runner.run(batch, images, cuts)
            self.images_from_prefix += len(images) * (runner.started_at[-1] > 0)
            return scores

        return forward

    @torch.no_grad()
    def _run(self, quantized: torch.nn.Module, stop_beyond: float | None) -> Measurement:
        """Count right and lost images batch by batch (smallest FP32 margin first, see the module doc);
        stop once ``stop_beyond`` pp is surely exceeded."""
        total = len(self.labels)
        order = self.state.order
        fp32_right = (self.fp32_predictions == self.labels)[order]
        ordered_labels = self.labels[order]
        allowed_lost = allowed_wrong = None
        if stop_beyond is not None:
            allowed_lost = stop_beyond / 100 * total + 1e-9
            allowed_wrong = (100 - self.fp32_accuracy + stop_beyond) / 100 * total + 1e-9
        right = lost = seen = 0
        with native_kernels(self.fast):
            forward = self._forward(quantized)
            for batch, start in enumerate(range(0, total, self.batch_size)):
                images = self.state.images[start : start + self.batch_size]
                labels = ordered_labels[start : start + self.batch_size]
                predictions = forward(batch, images).argmax(dim=1)
                right += int((predictions == labels).sum())
                lost += int((fp32_right[seen : seen + len(labels)] & (predictions != labels)).sum())
                seen += len(labels)
                self.images_evaluated += len(labels)
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
        if self.criterion == "accuracy-margin":
            tolerance *= MARGIN_SHARE
        measured = self._measure(allocation, stop_beyond=tolerance)
        if not measured.complete:
            return False
        accuracy_holds = measured.accuracy >= self.fp32_accuracy - tolerance - 1e-9
        if self.criterion != "losses":
            return accuracy_holds
        return accuracy_holds and measured.lost <= tolerance + 1e-9
