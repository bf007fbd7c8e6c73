"""What a job works on: the float model, its dataset's splits and the calibration batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from capsnet_nncf_plugin.capture import ensure_captured
from capsnet_nncf_plugin.data import load_dataset, search_images
from capsnet_nncf_plugin.evaluation import iterate_batches
from capsnet_nncf_plugin.job.config import JobConfig
from capsnet_nncf_plugin.models import is_model_file, load_model_file, open_checkpoint

#: Images per calibration batch.
CALIBRATION_BATCH = 128


@dataclass
class JobInputs:
    """The float model (eval mode, no training-only decoder), its data and its calibration batches.

    ``model`` is what the job quantizes: the model itself, or, for a model whose capsules are written by
    hand, its capture (built from the plugin's modules, computing the same); ``original`` is the model as
    given, on which FP32 accuracy is measured. ``calibration`` holds the first validation images and
    ``search`` the validation images after them, which the bit-width search decides on (``search_images``:
    calibration fits the integer model to its own images).
    """

    model: torch.nn.Module
    dataset: str
    validation: Dataset
    test: Dataset
    calibration: list[torch.Tensor]
    metadata: dict[str, Any]
    original: torch.nn.Module | None = None
    search: Dataset | None = None  # None: all of ``validation`` (calibration taken from elsewhere)

    def __post_init__(self) -> None:
        if self.original is None:
            self.original = self.model
        if self.search is None:
            self.search = self.validation

    @property
    def example(self) -> torch.Tensor:
        """Two calibration images: what exports trace with (a batch of 2 keeps the batch dynamic)."""
        return self.calibration[0][:2]


def open_model(config: JobConfig) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The float model ``config.model`` names and its metadata (the dataset it was trained on, if known):
    a zoo model, a checkpoint, or a user's ``file.py:factory`` with ``config.weights``."""
    if is_model_file(config.model):
        return load_model_file(config.model, config.weights), {}
    if config.weights is not None:
        raise ValueError("--weights loads a state dict into a model given as file.py:factory; drop it")
    checkpoint = open_checkpoint(config.model)
    checkpoint.model.without_decoder()  # training-only; never part of the deployed model or its memory
    return checkpoint.model.eval(), checkpoint.metadata


def load_inputs(config: JobConfig) -> JobInputs:
    """Open the model and load the validation (calibration, search) and test splits of its dataset."""
    model, metadata = open_model(config)
    dataset = config.dataset or metadata.get("dataset")
    if not dataset:
        raise ValueError(f"{config.model} does not record its dataset; pass --dataset NAME")
    validation = load_dataset(dataset, "val", root=config.data_root)
    test = load_dataset(dataset, "test", root=config.data_root)
    calibration = [
        images for images, _ in iterate_batches(validation, CALIBRATION_BATCH, config.calibration_images)
    ]
    quantizable = ensure_captured(model, calibration[0])
    search = search_images(validation, config.calibration_images)
    return JobInputs(
        quantizable, dataset, validation, test, calibration, metadata, original=model, search=search
    )
