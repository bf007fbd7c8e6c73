"""The main job: evaluate a float model, quantize it, export it to ONNX, run it in onnxruntime.

Steps: FP32 accuracy; the bit-width search (or an allocation file, or uniform bits); power-of-two PTQ
(FX or NNCF flow, integer squash and routing); QDQ ONNX export with the ``capsnet`` ops; test-set accuracy
of the integer model in torch and in onnxruntime side by side (with how exactly they agree); memory
accounting; ONNX file sizes; latency. ``capsq run`` is the command line. Everything goes to one report
folder, written as a unit (:class:`~capsnet_nncf_plugin.job.output.RunFolder`).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from capsnet_nncf_plugin.allocation import memory_report
from capsnet_nncf_plugin.allocation.layers import model_layers
from capsnet_nncf_plugin.allocation.report import bits_table, plot_bits, settings_text
from capsnet_nncf_plugin.atomic_file import write_bytes_atomically, write_text_atomically
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.core.integer_format import check_bits
from capsnet_nncf_plugin.errors import ConfigError, MissingFileError
from capsnet_nncf_plugin.export.onnx_export import quiet_torch_exporter
from capsnet_nncf_plugin.fx import quantization_points, quantize_fx
from capsnet_nncf_plugin.job.config import NO_SEARCH, SearchConfig
from capsnet_nncf_plugin.job.inputs import JobInputs, load_inputs
from capsnet_nncf_plugin.job.measurement import export_and_compare
from capsnet_nncf_plugin.job.output import RunFolder
from capsnet_nncf_plugin.job.reuse import fp32_test_accuracy
from capsnet_nncf_plugin.job.search import check_search_images, search
from capsnet_nncf_plugin.job.timing import PhaseTimer
from capsnet_nncf_plugin.latency import median_latency_ms
from capsnet_nncf_plugin.plugins import get_observer
from capsnet_nncf_plugin.runtime import InferenceSession, OnnxClassifier

logger = logging.getLogger(__name__)

#: The quantization flows ``capsq run --flow`` chooses between.
FLOWS = ("fx", "nncf")
#: Uniform width of the layers when neither a search nor a file gives per-layer bits.
UNIFORM_BITS = 8
_UNIFORM_FIELDS = ("weight_bits", "activation_bits", "routing_bits")


@dataclass
class RunConfig(SearchConfig):
    """What ``capsq run`` does; every field is a command-line option (``capsq run --help``).

    Per-layer bits come from one of: the ``method`` search (default), an ``allocation`` file, or, with
    ``method="none"``, the uniform ``weight_bits`` / ``activation_bits`` / ``routing_bits`` (8 each when
    not given). Giving uniform bits beside a search or a file is a contradiction and is refused.
    """

    out_dir: str = "reports/run"
    flow: str = "fx"  # "fx" (torch.ao prepare_fx/convert_fx) or "nncf" (nncf.quantize + the plugin)
    nncf_config: str | None = None  # a JSON/YAML NNCF configuration for --flow nncf
    allocation: str | None = None  # a BitAllocation JSON (from `capsq quantize`): no search
    weight_bits: int | None = None  # uniform bits, with method "none"
    activation_bits: int | None = None
    routing_bits: int | None = None
    weight_observer: str | None = None  # an observer name from `capsq plugins` (FX flow)
    activation_observer: str | None = None
    latency_batch: int = 32

    @property
    def searches(self) -> bool:
        return self.allocation is None and super().searches

    def uniform_bits(self) -> tuple[int, int, int]:
        """The uniform widths (weights, activations, routing) of a run without per-layer bits."""
        return tuple(
            UNIFORM_BITS if getattr(self, name) is None else getattr(self, name) for name in _UNIFORM_FIELDS
        )

    def check(self) -> None:
        """Raise ``ValueError`` naming the first field that cannot work, before anything is loaded."""
        for name in _UNIFORM_FIELDS:
            if getattr(self, name) is not None:
                check_bits(getattr(self, name), name)
        if self.flow not in FLOWS:
            raise ConfigError(f"flow must be one of {', '.join(FLOWS)}, got {self.flow!r}")
        if self.allocation is not None and self.method not in (None, NO_SEARCH):
            raise ConfigError(
                f"--allocation gives the bits and --method {self.method} would search them: drop one "
                "(--method none with --allocation)"
            )
        given = [name for name in _UNIFORM_FIELDS if getattr(self, name) is not None]
        if given and (self.searches or self.allocation is not None):
            source = (
                "--allocation's file" if self.allocation is not None else f"the {self.search_method} search"
            )
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ConfigError(
                f"{flags} set uniform bits, but {source} decides every layer's bits: add --method none for "
                f"uniform bits, or drop {flags}"
            )
        super().check()
        _check_count_positive("latency_batch", self.latency_batch)
        for name in ("weight_observer", "activation_observer"):
            if getattr(self, name) is not None:
                get_observer(getattr(self, name))
        if self.flow == "nncf" and (self.weight_observer or self.activation_observer):
            raise ConfigError(
                "--flow nncf takes its ranges from NNCF; observer choices apply to --flow fx only"
            )
        if self.bias_correction and self.flow == "nncf":
            raise ConfigError(
                "--bias-correction is the FX flow's; with --flow nncf, NNCF corrects biases itself "
                "(fast_bias_correction in the NNCF configuration, on by default): drop --bias-correction"
            )
        if self.weight_rounding != "nearest" and self.flow == "nncf":
            raise ConfigError(
                f"--weight-rounding {self.weight_rounding} is the FX flow's; the NNCF flow rounds weights to "
                "nearest: drop it or use --flow fx"
            )
        if self.nncf_config is not None and self.flow != "nncf":
            raise ConfigError(
                "nncf_config (--nncf-config) configures --flow nncf; add --flow nncf or drop it"
            )
        for name in ("allocation", "nncf_config"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise MissingFileError(f"{name}: no file {path}; give the path of an existing file")


def _check_count_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive number of images, got {value!r}")


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
    """Runs the main job and writes its report folder ``config.out_dir`` (replaced as a whole at the end)."""
    config.check()
    with RunFolder(config.out_dir) as folder:
        return _run(config, folder, progress)


def _run(config: RunConfig, folder: RunFolder, progress: bool) -> RunResult:
    timer = PhaseTimer()
    inputs = load_inputs(config)
    check_search_images(inputs, config)  # before the FP32 pass, not after it
    test_images = len(inputs.test) if config.test_limit is None else min(config.test_limit, len(inputs.test))

    with timer.phase("fp32_evaluation"):
        fp32 = fp32_test_accuracy(
            inputs.original, inputs.test, config.test_limit, config.reuse_dir, progress, description="FP32"
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with timer.phase("allocation"):
            allocation = _allocation(config, inputs, folder, progress)
        with timer.phase("quantization"):
            quantized = quantize_model(config, inputs, allocation, progress)
        with timer.phase("export_and_integer_evaluation"):
            exported, agreement, onnx_model = export_and_compare(
                quantized,
                inputs.example,
                inputs.test,
                folder.stage("model.onnx"),
                limit=config.test_limit,
                progress=progress,
            )
            fp32_onnx = export_float_onnx(inputs.original, inputs.example, folder.stage("model_fp32.onnx"))
    memory = memory_report(quantization_points(quantized), inputs.model).as_dict()
    onnx_summary = {
        "path": str(folder.final("model.onnx")),
        "bytes": exported.size_bytes,
        "fp32_bytes": fp32_onnx,
        "size_reduction": fp32_onnx / exported.size_bytes,
        "accuracy": agreement.candidate_accuracy,
        "agreement": agreement.as_dict(),
    }
    latency_images = inputs.calibration[0][: config.latency_batch]
    fp32_session = OnnxClassifier(InferenceSession(str(folder.stage("model_fp32.onnx"))))
    latency = {
        name: median_latency_ms(classifier, latency_images) / len(latency_images)
        for name, classifier in (
            ("fp32_torch", inputs.original),
            ("fp32_onnxruntime", fp32_session),
            ("integer_onnxruntime", onnx_model),
        )
    }
    result = RunResult(
        config,
        inputs.dataset,
        test_images,
        fp32,
        agreement.reference_accuracy,
        memory,
        onnx_summary,
        latency,
        timer.seconds,
        None if allocation is None else allocation.to_dict(),
    )
    write_report(result, folder)
    return result


def _allocation(
    config: RunConfig, inputs: JobInputs, folder: RunFolder, progress: bool
) -> BitAllocation | None:
    """The allocation the run quantizes with: ``--allocation`` file, a ``--method`` search, or None."""
    if config.allocation is not None:
        return BitAllocation.load(config.allocation).check_layers(model_layers(inputs.model))
    if not config.searches:
        return None
    allocation = search(inputs, config, progress=progress)
    allocation.save(folder.stage("allocation.json"))
    plot_bits(folder.stage("bits_per_layer.png"), allocation)
    return allocation


def quantize_model(
    config: RunConfig, inputs: JobInputs, allocation: BitAllocation | None, progress: bool
) -> torch.fx.GraphModule:
    """The integer model through the flow ``config.flow`` names, with the same bits either way.

    A searched or loaded allocation quantizes with the settings its search measured with; uniform bits with
    the run's own.
    """
    weight_bits, activation_bits, routing_bits = config.uniform_bits()
    settings = allocation.resolved_settings(config.settings()) if allocation else config.settings()
    if config.flow == "fx":
        observers = {
            key: None if name is None else get_observer(name)
            for key, name in (
                ("weight_observer", config.weight_observer),
                ("activation_observer", config.activation_observer),
            )
        }
        return quantize_fx(
            inputs.model,
            inputs.calibration,
            weight_bits=weight_bits,
            activation_bits=activation_bits,
            routing_bits=routing_bits,
            clip=settings.clip,
            allocation=allocation,
            progress=progress,
            bias_correction=settings.bias_correction,
            weight_rounding=settings.weight_rounding,
            **observers,
        )
    from capsnet_nncf_plugin.nncf import quantize
    from capsnet_nncf_plugin.nncf.config import read_config_file

    nncf_config = {} if config.nncf_config is None else read_config_file(config.nncf_config)
    if "compression" not in nncf_config:  # the command line fills what the user's capsnet section leaves out
        section = {
            "weight_bits": weight_bits,
            "activation_bits": activation_bits,
            "routing_bits": routing_bits,
            "clip": settings.clip,
        }
        nncf_config = {**nncf_config, "capsnet": {**section, **nncf_config.get("capsnet", {})}}
        nncf_config.setdefault("subset_size", len(inputs.calibration))
    return quantize(inputs.model, inputs.calibration, nncf_config, progress=progress, allocation=allocation)


def export_float_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> int:
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
        uniform = " / ".join(str(bits) for bits in config.uniform_bits())
        corrected = ", bias correction" if config.bias_correction else ""
        return "bits (weights / activations / routing)", f"{uniform} (clip={config.clip}{corrected})"
    allocation = BitAllocation.from_dict(result.allocation)
    if config.allocation is not None:
        return "bits", f"per layer from {config.allocation} ({allocation.method})"
    info = allocation.info
    searched = (
        f"{info['method']}, tolerance {info['tolerance']} pp ({info.get('criterion', 'accuracy')}, "
        f"{settings_text(allocation)}), {info['evaluations']} evaluations on {info['validation_images']} val "
        f"images, {info['analysis_seconds'] + info['search_seconds']:.0f} s"
    )
    return "bits (per layer, see report.md)", searched


def write_report(result: RunResult, folder: RunFolder) -> None:
    summary = asdict(result) | {"accuracy_delta": result.accuracy_delta}
    write_text_atomically(folder.stage("summary.json"), json.dumps(summary, indent=2) + "\n")
    report = (
        f"# capsq run: {result.config.model}\n\n```text\n{summary_table(result)}\n```\n\n"
        "Accuracies are measured on the official test split; calibration uses the validation split. "
        "Memory definitions: docs/memory.md. `model.onnx` runs in onnxruntime with the custom-op library "
        "(docs/export.md).\n"
    )
    if result.allocation is not None:
        report += "\n## Bits per layer\n\n" + bits_table(BitAllocation.from_dict(result.allocation)) + "\n"
        if folder.stage("bits_per_layer.png").exists():
            report += "\n![bits per layer](bits_per_layer.png)\n"
    write_text_atomically(folder.stage("report.md"), report)
    logger.info("report written to %s", folder.path)
