"""Measuring an integer model as a job reports it, on the test split: exported to QDQ ONNX and run in
onnxruntime beside the torch model (``capsq run``), or in onnxruntime alone where the torch model need not
run (``capsq quantize``)."""

from __future__ import annotations

import logging
import os

import torch
from torch.utils.data import Dataset

from capsnet_nncf_plugin.allocation.native_kernels import native_kernels
from capsnet_nncf_plugin.errors import ExportError
from capsnet_nncf_plugin.evaluation import Agreement, compare_classifiers, evaluate_accuracy
from capsnet_nncf_plugin.export import ExportedModel, export_onnx
from capsnet_nncf_plugin.job.inputs import JobInputs
from capsnet_nncf_plugin.runtime import InferenceSession, OnnxClassifier
from capsnet_nncf_plugin.runtime.library import NativeLibraryNotFoundError

logger = logging.getLogger(__name__)


def exported_classifier(
    quantized: torch.nn.Module, example: torch.Tensor, path: str | os.PathLike
) -> tuple[ExportedModel, OnnxClassifier]:
    """``quantized`` exported to ``path``, and an onnxruntime classifier of the file."""
    exported = export_onnx(quantized, example, path)
    return exported, OnnxClassifier(InferenceSession(str(exported.path)))


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
    exported, onnx_model = exported_classifier(quantized, example, path)
    with native_kernels(native):
        agreement = compare_classifiers(
            quantized, onnx_model, test, limit=limit, progress=progress, description=description
        )
    return exported, agreement, onnx_model


def integer_test_accuracy(
    quantized: torch.nn.Module, inputs: JobInputs, path: str | os.PathLike, limit: int | None, progress: bool
) -> tuple[float, str]:
    """Test accuracy of the integer model of a job's model on its test split (the first ``limit``
    images), and the runtime that measured it (``"onnxruntime"`` or ``"torch"``).

    In onnxruntime where the model exports (to ``path``) and the custom-op library loads: the same
    integers as the torch model (the export checks its form against it bit for bit; tests and the
    benchmarks compare both on every test image), twice as fast on DeepCaps (1.8x-2.1x at one thread each,
    docs/search-speed.md). Else in torch with the native squash and routing, with a warning that says why.
    """
    try:
        classifier = exported_classifier(quantized, inputs.example, path)[1]
    except (ExportError, NativeLibraryNotFoundError) as error:
        logger.warning("integer test in torch, not onnxruntime: %s", error)
        with native_kernels():
            accuracy = evaluate_accuracy(
                quantized, inputs.test, limit=limit, progress=progress, description="integer test (torch)"
            )
        return accuracy, "torch"
    accuracy = evaluate_accuracy(
        classifier, inputs.test, limit=limit, progress=progress, description="integer test (onnxruntime)"
    )
    return accuracy, "onnxruntime"
