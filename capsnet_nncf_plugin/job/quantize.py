"""The bit-width allocation job (``capsq quantize``): the error analysis, one method's search (or every
method's, to compare), the integer model on the test split, and a report folder with plots."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

from capsnet_nncf_plugin.allocation import available_methods
from capsnet_nncf_plugin.allocation.report import (
    plot_accuracy_vs_memory,
    plot_bits,
    plot_block_sensitivity,
    plot_routing_sensitivity,
    plot_sensitivity,
    write_markdown,
)
from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.errors import ConfigError
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.job.config import SearchConfig
from capsnet_nncf_plugin.job.inputs import load_inputs
from capsnet_nncf_plugin.job.measurement import integer_test_accuracy
from capsnet_nncf_plugin.job.output import RunFolder
from capsnet_nncf_plugin.job.reuse import fp32_test_accuracy
from capsnet_nncf_plugin.job.search import analyze, check_search_images, search
from capsnet_nncf_plugin.job.timing import PhaseTimer

logger = logging.getLogger(__name__)

#: The baseline every report compares against, run beside the chosen method.
BASELINE_METHOD = "uniform-8"


@dataclass
class QuantizeConfig(SearchConfig):
    """What ``capsq quantize`` does; every field is a command-line option (``capsq quantize --help``)."""

    out_dir: str = "reports/quantize"
    compare: bool = False  # also run every other method, for the comparison plot

    def check(self) -> None:
        if not self.searches:
            raise ConfigError("capsq quantize searches an allocation: give a --method other than 'none'")
        super().check()


@dataclass
class QuantizeResult:
    allocation: BitAllocation
    fp32_accuracy: float
    accuracy: float
    test_images: int
    methods: dict[str, BitAllocation] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall-clock per phase of the job

    def comparison(self) -> list[dict[str, Any]]:
        return [{"method": method, **allocation.info} for method, allocation in self.methods.items()]


def quantize(config: QuantizeConfig, progress: bool = True) -> QuantizeResult:
    """Run the allocation job and write its report folder ``config.out_dir`` (replaced as a whole)."""
    config.check()
    timer = PhaseTimer()
    with RunFolder(config.out_dir) as folder:
        with timer.phase("loading"):
            inputs = load_inputs(config)
            check_search_images(inputs, config)  # before the error analysis, not after it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with timer.phase("error_analysis"):
                analysis = analyze(inputs, config, progress, complete=True)
                analysis.save(folder.stage("error_analysis.json"))
                plot_sensitivity(folder.stage("sensitivity.png"), analysis)
                plot_block_sensitivity(folder.stage("block_sensitivity.png"), analysis)
                plot_routing_sensitivity(folder.stage("routing_sensitivity.png"), analysis)
            chosen = config.search_method
            others = [method for method in available_methods() if method != chosen]
            methods = [chosen, *(others if config.compare else [m for m in others if m == BASELINE_METHOD])]
            results = {}
            for method in methods:
                with timer.phase(f"search:{method}"):
                    results[method] = search(inputs, config, method, analysis, progress)
            allocation = results[chosen]
            allocation.save(folder.stage("allocation.json"))
            with timer.phase("fp32_test"):
                fp32 = fp32_test_accuracy(
                    inputs.original, inputs.test, config.test_limit, config.reuse_dir, progress
                )
            with timer.phase("integer_test"):
                # With the settings the allocation records, as its search measured it.
                quantized = quantize_fx(inputs.model, inputs.calibration, allocation=allocation)
                onnx_path, limit = folder.stage("model.onnx"), config.test_limit
                accuracy, runtime = integer_test_accuracy(quantized, inputs, onnx_path, limit, progress)
        images = len(inputs.test) if config.test_limit is None else min(config.test_limit, len(inputs.test))
        result = QuantizeResult(allocation, fp32, accuracy, images, results, timer.seconds)
        test_summary = {"fp32_accuracy": fp32, "accuracy": accuracy, "images": images, "runtime": runtime}
        comparison = result.comparison()
        title = f"capsq quantize: {config.model}"
        write_markdown(
            folder.stage("report.md"), title, allocation, test_summary, comparison, timer.describe()
        )
        plot_bits(folder.stage("bits_per_layer.png"), allocation)
        plot_accuracy_vs_memory(folder.stage("accuracy_vs_memory.png"), comparison)
        summary = {"test": test_summary, "methods": comparison, "seconds": timer.seconds}
        text = json.dumps(summary, indent=2, default=float) + "\n"
        write_text_atomically(folder.stage("summary.json"), text)
    return result
