"""Measurements a rerun reuses: the error analysis and the FP32 test accuracy, kept under ``--reuse-dir``.

An engineer runs ``capsq quantize`` again and again on one model (another ``--method``, another
``--tolerance``). Two of its phases give the same answer every time and cost more than many searches on
DeepCaps (docs/search-speed.md): the complete error analysis and the FP32 pass over the test split. Each is
kept in a file named by the fingerprint of everything it depends on (:mod:`capsnet_nncf_plugin.fingerprint`:
the model's code and weights, the images, the settings), so a changed input is a new file and never a
stale answer. ``--reuse-dir none`` measures both afresh.

The folder: ``DIR/error-analysis/<fingerprint>.json`` (``analyze_errors``' cache files) and
``DIR/fp32-test/<fingerprint>.json``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from pathlib import Path

import torch
from torch.utils.data import Dataset

from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.data.cache import cache_dir
from capsnet_nncf_plugin.evaluation import EVALUATION_BATCH, evaluate_accuracy
from capsnet_nncf_plugin.fingerprint import model_code_digest, update_with_tensors

logger = logging.getLogger(__name__)

#: ``--reuse-dir``'s default: the folder ``measurements`` of the plugin's cache (``$CAPSQ_CACHE``).
AUTOMATIC = "auto"
#: Version of the FP32 file layout; a file of another version is measured over.
FP32_FORMAT = 1


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
    digest = hashlib.sha256()
    digest.update(json.dumps([FP32_FORMAT, count, batch_size, model_code_digest(model)]).encode())
    update_with_tensors(
        digest,
        [*model.state_dict().items(), ("images", images[:count]), ("labels", labels[:count])],
    )
    return digest.hexdigest()


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
    folder = reuse_folder(reuse_dir)
    fingerprint = None if folder is None else fp32_fingerprint(model, dataset, count, EVALUATION_BATCH)
    path = None if fingerprint is None else folder / "fp32-test" / f"{fingerprint}.json"
    if path is not None and path.exists():
        try:
            kept = json.loads(path.read_text())
            accuracy = float(kept["accuracy"])
            if kept.get("format") == FP32_FORMAT and kept.get("images") == count and 0 <= accuracy <= 100:
                logger.info("%s: %.2f %% on %d images, read from %s", description, accuracy, count, path)
                return accuracy
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("ignoring the kept FP32 accuracy %s (%s); measuring afresh", path, error)
    accuracy = evaluate_accuracy(model, dataset, limit=limit, progress=progress, description=description)
    if path is not None:
        kept = {
            "format": FP32_FORMAT,
            "accuracy": accuracy,
            "images": count,
            "model": type(model).__qualname__,
            "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomically(path, json.dumps(kept) + "\n")
        except OSError as error:  # a read-only cache costs the next run this pass, nothing else
            logger.warning("could not keep the FP32 accuracy in %s (%s)", path, error)
    return accuracy
