"""Measuring an integer model as a job reports it: exported to QDQ ONNX and run in onnxruntime beside the
torch model, on the test split."""

from __future__ import annotations

import os

import torch
from torch.utils.data import Dataset

from capsnet_nncf_plugin.allocation.native_kernels import native_kernels
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
    native: bool = False,
) -> tuple[ExportedModel, Agreement, OnnxClassifier]:
    """Export ``quantized`` to ``path`` and compare it in onnxruntime with the torch integer model.

    Returns what the export wrote, the agreement (torch and onnxruntime accuracies, bit-identical outputs)
    and the onnxruntime classifier, for latency measurements. ``native``: the torch integer model runs its
    squash and routing on the native kernels (the same integers, ten times faster on DeepCaps; the torch
    reference itself is checked against them in tests/allocation/test_fast_evaluation.py).
    """
    exported = export_onnx(quantized, example, path)
    onnx_model = OnnxClassifier(InferenceSession(str(exported.path)))
    with native_kernels(native):
        agreement = compare_classifiers(
            quantized, onnx_model, test, limit=limit, progress=progress, description=description
        )
    return exported, agreement, onnx_model
