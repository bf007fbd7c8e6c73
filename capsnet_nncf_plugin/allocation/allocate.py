"""``allocate``: search per-layer bit-widths for a float capsule network with a named method."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import torch
from torch.utils.data import Dataset

from capsnet_nncf_plugin.allocation.defaults import (
    DEFAULT_CRITERION,
    DEFAULT_SEARCH_SETTINGS,
    DEFAULT_WEIGHT_REDUCTION,
    weight_budget_for_reduction,
)
from capsnet_nncf_plugin.allocation.evaluator import AccuracyEvaluator
from capsnet_nncf_plugin.allocation.layers import quantizable_layers
from capsnet_nncf_plugin.allocation.memory import memory_report
from capsnet_nncf_plugin.allocation.methods import SearchContext, get_method
from capsnet_nncf_plugin.allocation.methods.builtin import DEFAULT_METHOD
from capsnet_nncf_plugin.allocation.sensitivity import ErrorAnalysis, analyze_errors
from capsnet_nncf_plugin.capture import ensure_captured
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.core.settings import QuantizationSettings
from capsnet_nncf_plugin.data import search_images
from capsnet_nncf_plugin.evaluation import iterate_batches
from capsnet_nncf_plugin.measurement_store import MeasurementStore
from capsnet_nncf_plugin.quantized import quantization_points

logger = logging.getLogger(__name__)

#: Calibration images the error analysis runs each layer on (a subset of the calibration data).
ANALYSIS_IMAGES = 128


def _batches(data: Iterable[torch.Tensor] | Dataset, limit: int | None = None) -> list[torch.Tensor]:
    if isinstance(data, Dataset) or hasattr(data, "images"):
        return [images for images, _ in iterate_batches(data, 128, limit)]
    batches = list(data)
    if not all(isinstance(batch, torch.Tensor) for batch in batches):
        raise ValueError("calibration_data must be a dataset or an iterable of image batches (tensors)")
    return batches


def analysis_batches(calibration: list[torch.Tensor], images: int = ANALYSIS_IMAGES) -> list[torch.Tensor]:
    """The first ``images`` calibration images, in batches: what the error analysis runs each layer on."""
    return list(torch.cat(calibration)[:images].split(128))


def allocate(
    model: torch.nn.Module,
    calibration_data: Iterable[torch.Tensor] | Dataset,
    validation_data: Dataset,
    method: str = DEFAULT_METHOD,
    tolerance: float = 0.1,
    weight_memory_budget: float | None = None,
    settings: QuantizationSettings | None = None,
    weight_reduction: float | None = DEFAULT_WEIGHT_REDUCTION,
    calibration_images: int = 512,
    validation_limit: int | None = None,
    analysis: ErrorAnalysis | None = None,
    progress: bool = False,
    criterion: str = DEFAULT_CRITERION,
    fast: bool = True,
    store: MeasurementStore | None = None,
) -> BitAllocation:
    """Per-layer bits for ``model`` that lose at most ``tolerance`` percentage points of validation accuracy.

    ``calibration_data``: a dataset (its first ``calibration_images`` images) or image batches;
    ``validation_data``: a labelled dataset the search measures accuracy on (its first ``validation_limit``
    images). Calibration fits the integer model to its images, so the search should not judge on them:
    given the same dataset for both, the search measures on the images after the calibration's
    (``data.search_images``; ``capsq`` always does). ``method`` is a name from ``available_methods()``;
    ``weight_memory_budget`` (bits, as ``memory_report`` counts weights) is used by methods that fulfil a
    budget (error-guided, Q-CapsNets); without it, ``weight_reduction`` sets it against the FP32 weights
    (8: at most 1/8 of them; default ``None``: no budget). Pass a previous ``analysis`` to skip the error
    analysis.
    ``criterion``: what "within tolerance" means, ``"losses"``, ``"accuracy"`` or ``"accuracy-margin"``
    (see evaluator.py).
    ``settings``: the clipping rule, bias correction and weight rounding every candidate (and the error
    analysis) is quantized with (default: ``hardware`` clipping, round-to-nearest); the result carries
    the settings it was measured with (``allocation.settings``), so quantizing it repeats them. The
    defaults and the measurements behind them: ``allocation/defaults.py``.
    ``info`` of the result records the search: accuracies, evaluations, memory reductions,
    ``analysis_seconds`` (the error analysis), ``search_seconds`` (everything else) and
    ``evaluation_cost`` (where the evaluations' time went: ``evaluator.EvaluationCost``).
    ``fast``: evaluate candidates with the native kernels and the prefix cache (``evaluator.py``); the same
    decisions as ``False``, which runs each candidate's torch integer model as it is.
    ``store``: keeps FP32's pass over the validation images for the next search (``job/reuse.py``).
    """
    if tolerance < 0:
        raise ValueError(f"tolerance is in percentage points and must be >= 0, got {tolerance}")
    search = get_method(method)
    settings = settings or DEFAULT_SEARCH_SETTINGS
    model = model.eval()
    calibration = _batches(calibration_data, calibration_images)
    if not calibration:
        raise ValueError("allocate needs calibration data; pass a dataset or at least one batch of images")
    if validation_data is calibration_data:
        validation_data = search_images(validation_data, calibration_images)
        if len(validation_data) == 0:
            raise ValueError(
                f"calibration takes the first {calibration_images} images of the dataset given for both: "
                "none is left for the search; pass fewer calibration_images or other validation data"
            )
    # A model whose capsules are written by hand is searched (and its result named) as its capture.
    model = ensure_captured(model, calibration[0])
    started = time.perf_counter()
    analysis_before = 0.0 if analysis is None else analysis.seconds
    if analysis is None:
        # Lazy: a method measures only the (layer, kind, width) entries it reads.
        analysis = analyze_errors(model, analysis_batches(calibration), settings=settings, lazy=True)
    evaluator = AccuracyEvaluator(
        model,
        calibration,
        validation_data,
        settings=settings,
        limit=validation_limit,
        criterion=criterion,
        fast=fast,
        store=store,
    )
    if weight_memory_budget is None and weight_reduction is not None:
        weight_memory_budget = weight_budget_for_reduction(model, weight_reduction)
    context = SearchContext(
        layers=quantizable_layers(model),
        analysis=analysis,
        evaluator=evaluator,
        tolerance=tolerance,
        weight_memory_budget=weight_memory_budget,
        progress=progress,
    )
    allocation = search(context)
    allocation = allocation.with_settings(evaluator.settings_of(allocation))
    measured = evaluator.measure(allocation)
    accuracy = measured.accuracy
    memory = memory_report(quantization_points(evaluator.quantized_model(allocation)), model)
    allocation.info.update(
        {
            "method": method,
            "tolerance": tolerance,
            "validation_images": evaluator.limit or len(validation_data),
            "fp32_validation_accuracy": evaluator.fp32_accuracy,
            "validation_accuracy": accuracy,
            "validation_lost": measured.lost,
            "criterion": criterion,
            "meets_tolerance": evaluator.holds(allocation, tolerance),
            "evaluations": evaluator.evaluations,
            "evaluation_cost": evaluator.cost.to_dict(),
            "analysis_seconds": analysis.seconds,
            # Wall time of this call without the error analysis it measured (lazy entries included).
            "search_seconds": time.perf_counter() - started - (analysis.seconds - analysis_before),
            "weight_reduction": memory.weight_reduction,
            "activation_reduction": memory.activation_reduction,
            "routing_reduction": memory.routing_reduction,
        }
    )
    if not allocation.info["meets_tolerance"]:
        logger.warning(
            "%s: even its widest allocation loses %.2f pp (> %.2f); consider a larger tolerance or "
            "another clip mode",
            method,
            evaluator.fp32_accuracy - accuracy,
            tolerance,
        )
    return allocation
