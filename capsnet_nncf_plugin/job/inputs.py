"""What a job works on: the float model, its dataset's splits and the calibration batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from capsnet_nncf_plugin.data import load_dataset
from capsnet_nncf_plugin.evaluation import iterate_batches
from capsnet_nncf_plugin.job.config import JobConfig
from capsnet_nncf_plugin.models import open_checkpoint

#: Images per calibration batch.
CALIBRATION_BATCH = 128


@dataclass
class JobInputs:
    """The float model (eval mode, no training-only decoder), its data and its calibration batches."""

    model: torch.nn.Module
    dataset: str
    validation: Dataset
    test: Dataset
    calibration: list[torch.Tensor]
    metadata: dict[str, Any]

    @property
    def example(self) -> torch.Tensor:
        """Two calibration images: what exports trace with (a batch of 2 keeps the batch dynamic)."""
        return self.calibration[0][:2]


def open_model(config: JobConfig) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The float model ``config.model`` names and its metadata (the dataset it was trained on, if known)."""
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
    return JobInputs(model, dataset, validation, test, calibration, metadata)
