"""The main job: evaluate a float model, quantize it, evaluate the integer model, account its memory.

``capsq run`` is this module's command line. Later stages (progressive allocation, ONNX export,
onnxruntime) join it as they land; each stage's results go into the same summary and report folder.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from capsnet_nncf_plugin.allocation import memory_report
from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.data import load_dataset
from capsnet_nncf_plugin.evaluation import evaluate_accuracy, iterate_batches
from capsnet_nncf_plugin.fx import quantization_points, quantize_fx
from capsnet_nncf_plugin.models import open_checkpoint

logger = logging.getLogger(__name__)


@dataclass
class RunConfig:
    """What ``capsq run`` does; every field is a command-line option."""

    model: str = "zoo:shallowcaps-mnist"
    dataset: str | None = None
    data_root: str | None = None
    weight_bits: int = 8
    activation_bits: int = 8
    routing_bits: int = 8
    clip: str = "hardware"
    calibration_images: int = 512
    test_limit: int | None = None
    out_dir: str = "reports/run"


@dataclass
class RunResult:
    config: RunConfig
    dataset: str
    test_images: int
    fp32_accuracy: float
    quantized_accuracy: float
    memory: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy_delta(self) -> float:
        return self.quantized_accuracy - self.fp32_accuracy


def run(config: RunConfig, progress: bool = True) -> RunResult:
    """Runs the main job and writes ``summary.json`` and ``report.md`` to ``config.out_dir``."""
    seconds: dict[str, float] = {}
    checkpoint = open_checkpoint(config.model)
    checkpoint.model.without_decoder()  # training-only; never part of the deployed model or its memory
    dataset = config.dataset or checkpoint.metadata.get("dataset")
    if not dataset:
        raise ValueError(f"{config.model} does not record its dataset; pass --dataset NAME")
    test = load_dataset(dataset, "test", root=config.data_root)
    validation = load_dataset(dataset, "val", root=config.data_root)
    test_images = len(test) if config.test_limit is None else min(config.test_limit, len(test))

    started = time.perf_counter()
    fp32 = evaluate_accuracy(
        checkpoint.model, test, limit=config.test_limit, progress=progress, description="FP32"
    )
    seconds["fp32_evaluation"] = time.perf_counter() - started

    started = time.perf_counter()
    calibration = [images for images, _ in iterate_batches(validation, 128, config.calibration_images)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = quantize_fx(
            checkpoint.model,
            calibration,
            weight_bits=config.weight_bits,
            activation_bits=config.activation_bits,
            routing_bits=config.routing_bits,
            clip=config.clip,
            progress=progress,
        )
        seconds["quantization"] = time.perf_counter() - started
        started = time.perf_counter()
        accuracy = evaluate_accuracy(
            quantized, test, limit=config.test_limit, progress=progress, description="integer"
        )
    seconds["integer_evaluation"] = time.perf_counter() - started
    memory = memory_report(quantization_points(quantized), checkpoint.model).as_dict()
    result = RunResult(config, dataset, test_images, fp32, accuracy, memory, seconds)
    write_report(result)
    return result


def summary_table(result: RunResult) -> str:
    """The summary as aligned text rows."""
    memory = result.memory
    rows = [
        ("model", result.config.model),
        ("dataset / test images", f"{result.dataset} / {result.test_images}"),
        (
            "bits (weights / activations / routing)",
            f"{result.config.weight_bits} / {result.config.activation_bits} / {result.config.routing_bits}"
            f" (clip={result.config.clip})",
        ),
        ("FP32 accuracy (torch)", f"{result.fp32_accuracy:.2f} %"),
        ("integer accuracy (torch)", f"{result.quantized_accuracy:.2f} %"),
        ("accuracy change", f"{result.accuracy_delta:+.2f} pp"),
        (
            "weight memory",
            f"{memory['weight_bits'] / 8e6:.2f} MB (FP32 {memory['weight_bits_fp32'] / 8e6:.2f} MB), "
            f"{memory['weight_reduction']:.2f}x smaller",
        ),
        (
            "activation memory / sample",
            f"{memory['activation_bits'] / 8e3:.1f} kB "
            f"(FP32 {memory['activation_bits_fp32'] / 8e3:.1f} kB), "
            f"{memory['activation_reduction']:.2f}x smaller",
        ),
        (
            "routing memory / sample",
            f"{memory['routing_bits'] / 8e3:.1f} kB, {memory['routing_reduction']:.2f}x smaller",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def write_report(result: RunResult) -> None:
    out_dir = Path(result.config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = asdict(result) | {"accuracy_delta": result.accuracy_delta}
    write_text_atomically(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    report = (
        f"# capsq run: {result.config.model}\n\n```text\n{summary_table(result)}\n```\n\n"
        "Accuracies are measured on the official test split; calibration uses the validation split. "
        "Memory definitions: docs/memory.md.\n"
    )
    write_text_atomically(out_dir / "report.md", report)
    logger.info("report written to %s", out_dir)
