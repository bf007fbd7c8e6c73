"""What the benchmark scripts share: the models they run (``--model``: zoo names or checkpoints, by default
the whole zoo) and each model's test set and calibration batches."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from capsnet_nncf_plugin.cli.arguments import positive_int
from capsnet_nncf_plugin.data import ImageDataset, load_dataset
from capsnet_nncf_plugin.evaluation import iterate_batches
from capsnet_nncf_plugin.models import available_pretrained, open_checkpoint

CALIBRATION_BATCH = 128


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--dataset``, ``--limit`` and ``--calibration``."""
    parser.add_argument("--model", action="append", help="zoo:NAME or a checkpoint (repeatable)")
    parser.add_argument("--dataset", default=None, help="dataset of a checkpoint without metadata")
    parser.add_argument("--limit", type=positive_int, default=None, help="test images (default: all)")
    parser.add_argument(
        "--calibration", type=positive_int, default=512, help="validation images for calibration"
    )


@dataclass
class BenchmarkModel:
    reference: str
    model: torch.nn.Module  # FP32, eval mode, without the training-only decoder
    dataset: str
    test: ImageDataset
    calibration: list[torch.Tensor]  # image batches from the validation split


def benchmark_models(args: argparse.Namespace) -> Iterator[BenchmarkModel]:
    """Each model ``args`` names, loaded with its data; exits with a message when there is none."""
    references = args.model or [f"zoo:{name}" for name in available_pretrained()]
    if not references:
        raise SystemExit("the zoo is empty; pass --model CHECKPOINT")
    for reference in references:
        checkpoint = open_checkpoint(reference)
        checkpoint.model.without_decoder()
        dataset = args.dataset or checkpoint.metadata["dataset"]
        validation = load_dataset(dataset, "val")
        calibration = [
            images for images, _ in iterate_batches(validation, CALIBRATION_BATCH, args.calibration)
        ]
        yield BenchmarkModel(
            reference, checkpoint.model.eval(), dataset, load_dataset(dataset, "test"), calibration
        )
