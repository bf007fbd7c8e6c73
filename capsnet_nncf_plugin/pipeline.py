"""The main job: evaluate a float model, quantize it, export it to ONNX, run it in onnxruntime.

Steps: FP32 accuracy; power-of-two PTQ (FX flow, integer squash and routing); QDQ ONNX export with the
``capsnet`` ops; test-set accuracy of the integer model in torch and in onnxruntime side by side (with how
exactly they agree); memory accounting; ONNX file sizes; latency. ``capsq run`` is the command line. The
progressive allocation joins as it lands; each stage's results go into the same summary and report folder.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from capsnet_nncf_plugin.allocation import allocate, get_method, memory_report
from capsnet_nncf_plugin.allocation.bit_allocation import BitAllocation
from capsnet_nncf_plugin.allocation.evaluator import CRITERIA
from capsnet_nncf_plugin.allocation.methods.builtin import DEFAULT_METHOD
from capsnet_nncf_plugin.allocation.report import bits_table, plot_bits
from capsnet_nncf_plugin.atomic_file import write_bytes_atomically, write_text_atomically
from capsnet_nncf_plugin.data import load_dataset
from capsnet_nncf_plugin.evaluation import compare_classifiers, evaluate_accuracy, iterate_batches
from capsnet_nncf_plugin.export import export_onnx
from capsnet_nncf_plugin.export.onnx_export import quiet_torch_exporter
from capsnet_nncf_plugin.fx import quantization_points, quantize_fx
from capsnet_nncf_plugin.latency import median_latency_ms
from capsnet_nncf_plugin.models import open_checkpoint
from capsnet_nncf_plugin.observers import CLIP_MODES
from capsnet_nncf_plugin.observers.integer_format import check_bits
from capsnet_nncf_plugin.plugins import get_observer
from capsnet_nncf_plugin.runtime import InferenceSession, OnnxClassifier

logger = logging.getLogger(__name__)


#: The quantization flows ``capsq run --flow`` chooses between.
FLOWS = ("fx", "nncf")


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
    flow: str = "fx"  # "fx" (torch.ao prepare_fx/convert_fx) or "nncf" (nncf.quantize + the plugin)
    nncf_config: str | None = None  # a JSON/YAML NNCF configuration for --flow nncf
    allocation: str | None = None  # a BitAllocation JSON (from `capsq quantize`): no search
    method: str | None = DEFAULT_METHOD  # the allocation search; None or "none": uniform bits
    tolerance: float = 0.1
    criterion: str = "losses"
    bias_correction: bool = False  # FX flow: biases absorb the quantized weights' mean error
    validation_limit: int | None = 2000  # validation images the search measures on
    weight_observer: str | None = None  # an observer name from `capsq plugins` (FX flow)
    activation_observer: str | None = None
    calibration_images: int = 512
    test_limit: int | None = None
    out_dir: str = "reports/run"
    latency_batch: int = 32

    def check(self) -> None:
        """Raise ``ValueError`` naming the first field that cannot work, before anything is loaded."""
        for name in ("weight_bits", "activation_bits", "routing_bits"):
            check_bits(getattr(self, name), name)
        for name, value, allowed in (
            ("clip", self.clip, CLIP_MODES),
            ("flow", self.flow, FLOWS),
            ("criterion", self.criterion, CRITERIA),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if not self.tolerance >= 0:  # also rejects NaN
            raise ValueError(f"tolerance is in percentage points and must be >= 0, got {self.tolerance}")
        for name in ("validation_limit", "calibration_images", "test_limit", "latency_batch"):
            count = getattr(self, name)
            if count is not None and count < 1:
                raise ValueError(f"{name} must be a positive number of images, got {count}")
        if self.allocation is None and self.method not in (None, "none"):
            get_method(self.method)  # an unknown name lists the registered methods
        for name in ("weight_observer", "activation_observer"):
            if getattr(self, name) is not None:
                get_observer(getattr(self, name))
        if self.flow == "nncf" and (self.weight_observer or self.activation_observer):
            raise ValueError(
                "--flow nncf takes its ranges from NNCF; observer choices apply to --flow fx only"
            )
        if self.bias_correction and self.flow == "nncf":
            raise ValueError(
                "--bias-correction is the FX flow's; with --flow nncf, NNCF corrects biases itself "
                "(fast_bias_correction in the NNCF configuration, on by default): drop --bias-correction"
            )
        if self.nncf_config is not None and self.flow != "nncf":
            raise ValueError("nncf_config (--nncf-config) configures --flow nncf; add --flow nncf or drop it")
        for name in ("allocation", "nncf_config"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{name}: no file {path}; give the path of an existing file")


@dataclass
class RunResult:
    config: RunConfig
    dataset: str
    test_images: int
    fp32_accuracy: float
    quantized_accuracy: float
    memory: dict[str, Any]
    onnx: dict[str, Any] = field(default_factory=dict)
    latency_ms_per_image: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    allocation: dict[str, Any] | None = None  # BitAllocation.to_dict() of the bits used, when per layer

    @property
    def accuracy_delta(self) -> float:
        return self.quantized_accuracy - self.fp32_accuracy


def run(config: RunConfig, progress: bool = True) -> RunResult:
    """Runs the main job and writes ``summary.json`` and ``report.md`` to ``config.out_dir``."""
    config.check()
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

    calibration = [images for images, _ in iterate_batches(validation, 128, config.calibration_images)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        allocation = search_allocation(config, checkpoint.model, calibration, validation, progress)
        seconds["allocation"] = time.perf_counter() - started
        started = time.perf_counter()
        quantized = quantize_model(config, checkpoint.model, calibration, allocation, progress)
        seconds["quantization"] = time.perf_counter() - started

        out_dir = Path(config.out_dir)
        started = time.perf_counter()
        example = calibration[0][:2]
        exported = export_onnx(quantized, example, out_dir / "model.onnx")
        fp32_onnx = _export_float_onnx(checkpoint.model, example, out_dir / "model_fp32.onnx")
        seconds["export"] = time.perf_counter() - started

        started = time.perf_counter()
        onnx_model = OnnxClassifier(InferenceSession(str(exported.path)))
        agreement = compare_classifiers(
            quantized, onnx_model, test, limit=config.test_limit, progress=progress, description="integer"
        )
    seconds["integer_evaluation"] = time.perf_counter() - started
    memory = memory_report(quantization_points(quantized), checkpoint.model).as_dict()
    onnx_summary = {
        "path": str(exported.path),
        "bytes": exported.size_bytes,
        "fp32_bytes": fp32_onnx,
        "size_reduction": fp32_onnx / exported.size_bytes,
        "accuracy": agreement.candidate_accuracy,
        "agreement": agreement.as_dict(),
    }
    latency_images = calibration[0][: config.latency_batch]
    fp32_session = OnnxClassifier(InferenceSession(str(out_dir / "model_fp32.onnx")))
    latency = {
        name: median_latency_ms(classifier, latency_images) / len(latency_images)
        for name, classifier in (
            ("fp32_torch", checkpoint.model),
            ("fp32_onnxruntime", fp32_session),
            ("integer_onnxruntime", onnx_model),
        )
    }
    result = RunResult(
        config,
        dataset,
        test_images,
        fp32,
        agreement.reference_accuracy,
        memory,
        onnx_summary,
        latency,
        seconds,
        None if allocation is None else allocation.to_dict(),
    )
    write_report(result)
    return result


def search_allocation(
    config: RunConfig,
    model: torch.nn.Module,
    calibration: list[torch.Tensor],
    validation: torch.utils.data.Dataset,
    progress: bool,
) -> BitAllocation | None:
    """The allocation the run quantizes with: ``--allocation`` file, a ``--method`` search, or None."""
    if config.allocation is not None:
        return BitAllocation.load(config.allocation)
    if config.method in (None, "none"):
        return None
    allocation = allocate(
        model,
        calibration,
        validation,
        method=config.method,
        tolerance=config.tolerance,
        clip=config.clip,
        validation_limit=config.validation_limit,
        criterion=config.criterion,
        bias_correction=config.bias_correction,
        progress=progress,
    )
    out_dir = Path(config.out_dir)
    allocation.save(out_dir / "allocation.json")
    plot_bits(out_dir / "bits_per_layer.png", allocation)
    return allocation


def quantize_model(
    config: RunConfig,
    model: torch.nn.Module,
    calibration: list[torch.Tensor],
    allocation: BitAllocation | None,
    progress: bool,
) -> torch.fx.GraphModule:
    """The integer model through the flow ``config.flow`` names, with the same bits either way.

    ``config`` has passed ``RunConfig.check()`` (``run`` calls it first).
    """
    # A searched allocation quantizes as its search measured it.
    recorded = {} if allocation is None else allocation.info
    clip = str(recorded.get("clip", config.clip))
    if config.flow == "fx":
        observers = {
            key: None if name is None else get_observer(name)
            for key, name in (
                ("weight_observer", config.weight_observer),
                ("activation_observer", config.activation_observer),
            )
        }
        return quantize_fx(
            model,
            calibration,
            weight_bits=config.weight_bits,
            activation_bits=config.activation_bits,
            routing_bits=config.routing_bits,
            clip=clip,
            allocation=allocation,
            progress=progress,
            bias_correction=bool(recorded.get("bias_correction", config.bias_correction)),
            **observers,
        )
    from capsnet_nncf_plugin.nncf import quantize
    from capsnet_nncf_plugin.nncf.config import read_config_file

    nncf_config = {} if config.nncf_config is None else read_config_file(config.nncf_config)
    if "compression" not in nncf_config:  # the command line fills what the user's capsnet section leaves out
        section: dict[str, Any] = {
            "weight_bits": config.weight_bits,
            "activation_bits": config.activation_bits,
            "routing_bits": config.routing_bits,
            "clip": clip,
        }
        if allocation is not None:
            section["allocation"] = str(allocation.save(Path(config.out_dir) / "allocation.json"))
        nncf_config = {**nncf_config, "capsnet": {**section, **nncf_config.get("capsnet", {})}}
        nncf_config.setdefault("subset_size", len(calibration))
    return quantize(model, calibration, nncf_config, progress=progress)


def _export_float_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> int:
    """The float model as ONNX (the size and latency baseline); returns its size in bytes."""
    with quiet_torch_exporter():
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=21,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    payload = program.model_proto.SerializeToString()
    write_bytes_atomically(path, payload)
    return len(payload)


def summary_table(result: RunResult) -> str:
    """The summary as aligned text rows."""
    memory = result.memory
    rows = [
        ("model", result.config.model),
        ("dataset / test images", f"{result.dataset} / {result.test_images}"),
        ("flow", "NNCF (nncf.quantize + plugin)" if result.config.flow == "nncf" else "torch.ao FX"),
        _bits_row(result),
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
    if result.onnx:
        onnx = result.onnx
        agreement = onnx["agreement"]
        latency = result.latency_ms_per_image
        rows += [
            ("integer accuracy (onnxruntime)", f"{onnx['accuracy']:.2f} %"),
            (
                "onnxruntime vs torch",
                f"{agreement['identical_outputs']:.2f} % of images bit-identical, "
                f"{agreement['same_top1']:.2f} % same class",
            ),
            (
                "ONNX file",
                f"{onnx['bytes'] / 1e6:.2f} MB (FP32 {onnx['fp32_bytes'] / 1e6:.2f} MB), "
                f"{onnx['size_reduction']:.2f}x smaller",
            ),
            (
                f"latency / image, batch {result.config.latency_batch}",
                f"FP32 torch {latency['fp32_torch']:.2f} ms, FP32 onnxruntime "
                f"{latency['fp32_onnxruntime']:.2f} ms, integer onnxruntime "
                f"{latency['integer_onnxruntime']:.2f} ms",
            ),
        ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _bits_row(result: RunResult) -> tuple[str, str]:
    config = result.config
    if result.allocation is None:
        uniform = f"{config.weight_bits} / {config.activation_bits} / {config.routing_bits}"
        corrected = ", bias correction" if config.bias_correction else ""
        return "bits (weights / activations / routing)", f"{uniform} (clip={config.clip}{corrected})"
    info = result.allocation["info"]
    if config.allocation is not None:
        return "bits", f"per layer from {config.allocation} ({result.allocation['method']})"
    searched = (
        f"{info['method']}, tolerance {info['tolerance']} pp ({info.get('criterion', 'accuracy')}"
        f"{', bias correction' if info.get('bias_correction') else ''}), "
        f"{info['evaluations']} evaluations on {info['validation_images']} val images, "
        f"{info['analysis_seconds'] + info['search_seconds']:.0f} s"
    )
    return "bits (per layer, see report.md)", searched


def write_report(result: RunResult) -> None:
    out_dir = Path(result.config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = asdict(result) | {"accuracy_delta": result.accuracy_delta}
    write_text_atomically(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    report = (
        f"# capsq run: {result.config.model}\n\n```text\n{summary_table(result)}\n```\n\n"
        "Accuracies are measured on the official test split; calibration uses the validation split. "
        "Memory definitions: docs/memory.md. `model.onnx` runs in onnxruntime with the custom-op library "
        "(docs/export.md).\n"
    )
    if result.allocation is not None:
        report += "\n## Bits per layer\n\n" + bits_table(BitAllocation.from_dict(result.allocation)) + "\n"
        if (out_dir / "bits_per_layer.png").exists():
            report += "\n![bits per layer](bits_per_layer.png)\n"
    write_text_atomically(out_dir / "report.md", report)
    logger.info("report written to %s", out_dir)
