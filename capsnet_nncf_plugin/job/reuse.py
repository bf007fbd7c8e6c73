"""Measurements a rerun reuses, kept under ``--reuse-dir``: the error analysis, FP32's accuracy on the test
images and FP32's predictions on the validation images.

An engineer runs ``capsq quantize`` again and again on one model (another ``--method``, another
``--tolerance``). Those three give the same answer every time, and on DeepCaps they cost more than many
searches (docs/search-speed.md). Each is kept in a file named by the fingerprint of everything it depends
on (:mod:`capsnet_nncf_plugin.fingerprint`: the model's code and weights, the images, the settings), so a
changed input is a new file and never a stale answer. ``--reuse-dir none`` measures all of them afresh.

The folder (:class:`~capsnet_nncf_plugin.measurement_store.MeasurementStore`):
``DIR/error-analysis/<fingerprint>.json`` (``analyze_errors``' cache files), ``DIR/fp32-test/...json`` and
``DIR/fp32-validation/...pt`` (the allocation evaluator's).
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

import torch
from torch.utils.data import Dataset

from capsnet_nncf_plugin.core.real_numbers import is_finite_number
from capsnet_nncf_plugin.data.cache import cache_dir
from capsnet_nncf_plugin.evaluation import EVALUATION_BATCH, evaluate_accuracy
from capsnet_nncf_plugin.fingerprint import measurement_fingerprint
from capsnet_nncf_plugin.measurement_store import MeasurementStore

logger = logging.getLogger(__name__)

#: ``--reuse-dir``'s default: the folder ``measurements`` of the plugin's cache (``$CAPSQ_CACHE``).
AUTOMATIC = "auto"
#: Version of the FP32 file layout; a file of another version is measured over.
FP32_FORMAT = 1
#: The store's kind of the FP32 test accuracies.
FP32_TEST = "fp32-test"


def automatic_folder() -> Path:
    """The folder ``--reuse-dir auto`` names."""
    return cache_dir() / "measurements"


def reuse_folder(reuse_dir: str | None) -> Path | None:
    """The folder ``--reuse-dir`` names: None (measure afresh), ``auto`` or a path."""
    if reuse_dir is None:
        return None
    return automatic_folder() if reuse_dir == AUTOMATIC else Path(reuse_dir).expanduser()


def analysis_folder(reuse_dir: str | None) -> Path | None:
    """Where the error analyses are kept, one file per fingerprint; None when nothing is reused."""
    folder = reuse_folder(reuse_dir)
    return None if folder is None else folder / "error-analysis"


def fp32_fingerprint(model: torch.nn.Module, dataset: Dataset, count: int, batch_size: int) -> str | None:
    """What the FP32 accuracy of ``model`` on the first ``count`` images depends on, hashed; None for a
    dataset that does not hold its images and labels as tensors (it is measured every time)."""
    images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
    if not (isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor)):
        return None
    tensors = [("images", images[:count]), ("labels", labels[:count])]
    return measurement_fingerprint(model, tensors, [FP32_TEST, FP32_FORMAT, count, batch_size])


def store_of(reuse_dir: str | None) -> MeasurementStore | None:
    """The store of ``--reuse-dir``; None when nothing is reused."""
    folder = reuse_folder(reuse_dir)
    return None if folder is None else MeasurementStore(folder)


def fp32_test_accuracy(
    model: torch.nn.Module,
    dataset: Dataset,
    limit: int | None,
    reuse_dir: str | None,
    progress: bool = False,
    description: str = "FP32 test",
) -> float:
    """``evaluate_accuracy(model, dataset, limit=limit)``, read from ``reuse_dir`` when it was measured
    before on the same model, code and images, and kept there otherwise."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    store = store_of(reuse_dir)
    fingerprint = None if store is None else fp32_fingerprint(model, dataset, count, EVALUATION_BATCH)
    kept = None if fingerprint is None else store.read_json(FP32_TEST, fingerprint)
    if kept is not None:  # the fingerprint covers the layout version and the image count already
        accuracy = kept.get("accuracy")
        if is_percentage(accuracy):
            logger.info("%s: %.2f %% on %d images, read back (--reuse-dir)", description, accuracy, count)
            return float(accuracy)
        logger.warning("ignoring a kept FP32 accuracy that is not a percentage; measuring afresh")
    accuracy = evaluate_accuracy(model, dataset, limit=limit, progress=progress, description=description)
    if fingerprint is not None:
        measured = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        document = {"format": FP32_FORMAT, "accuracy": accuracy, "images": count, "measured": measured}
        store.write_json(FP32_TEST, fingerprint, {**document, "model": type(model).__qualname__})
    return accuracy


def is_percentage(value: object) -> bool:
    """A finite number in [0, 100], not a bool."""
    return is_finite_number(value) and 0 <= value <= 100
