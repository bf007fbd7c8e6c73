"""Measuring an integer model as a job reports it: exported to QDQ ONNX and run in onnxruntime beside the
torch model, on the test split."""

from __future__ import annotations

import os

import torch
from torch.utils.data import Dataset

from capsnet_nncf_plugin.evaluation import Agreement, compare_classifiers
from capsnet_nncf_plugin.export import ExportedModel, export_onnx
from capsnet_nncf_plugin.runtime import InferenceSession, OnnxClassifier


def export_and_compare(
    quantized: torch.nn.Module,
    example: torch.Tensor,
    test: Dataset,
    path: str | os.PathLike,
    limit: int | None = None,
    progress: bool = False,
    description: str = "integer",
) -> tuple[ExportedModel, Agreement, OnnxClassifier]:
    """Export ``quantized`` to ``path`` and compare it in onnxruntime with the torch integer model.

    Returns what the export wrote, the agreement (torch and onnxruntime accuracies, bit-identical outputs)
    and the onnxruntime classifier, for latency measurements.
    """
    exported = export_onnx(quantized, example, path)
    onnx_model = OnnxClassifier(InferenceSession(str(exported.path)))
    agreement = compare_classifiers(
        quantized, onnx_model, test, limit=limit, progress=progress, description=description
    )
    return exported, agreement, onnx_model
