"""Routing widths per tensor and iteration chosen by error-guided's routing thresholds, and their test loss.

    python benchmarks/routing_thresholds.py --model zoo:shallowcaps-mnist
    python benchmarks/routing_thresholds.py --model zoo:deepcaps-mnist --thresholds 20,26

Every layer's weights and activations stay at 8 bits; only the dynamic routing changes. For each threshold
the widths error-guided would try (``routing_at_threshold``: each entry alone must keep the routing layer's
output SQNR at the threshold plus ``10 log10(entries)``, the noise of all entries added) and, for
comparison, the widths without that margin, each with its test accuracy on the integer model (native
squash and routing, the torch reference's integers) and its routing memory reduction.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from allocation import code_version
from zoo_models import add_model_arguments, benchmark_models

from capsnet_nncf_plugin.allocation.layers import quantizable_layers
from capsnet_nncf_plugin.allocation.memory import memory_report
from capsnet_nncf_plugin.allocation.methods.error_guided import routing_at_threshold
from capsnet_nncf_plugin.allocation.native_kernels import native_kernels
from capsnet_nncf_plugin.allocation.sensitivity import ErrorAnalysis, analyze_errors
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.core.bit_widths import ROUTING_SYMBOLS, ROUTING_TENSORS
from capsnet_nncf_plugin.errors import run_reporting_user_errors
from capsnet_nncf_plugin.evaluation import evaluate_accuracy
from capsnet_nncf_plugin.fx import SharedCalibration, quantization_points


def describe(allocation: BitAllocation, analysis: ErrorAnalysis) -> str:
    """``layer: b (..) c (..) s (..) v (..)`` for every routing layer."""
    parts = []
    for name in analysis.iterations:
        routing = allocation.layers[name].routing
        widths = " ".join(
            f"{ROUTING_SYMBOLS[t]} {routing.per_iteration(t, analysis.iteration_count(name, t))}"
            for t in ROUTING_TENSORS
        )
        parts.append(f"{name}: {widths}")
    return "; ".join(parts)


def thresholds_list(text: str) -> list[float]:
    """``--thresholds``: dB values, comma-separated."""
    try:
        return [float(value) for value in text.split(",")]
    except ValueError:
        message = f"{text!r} is not a comma-separated list of dB values, e.g. 20,26"
        raise argparse.ArgumentTypeError(message) from None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--thresholds", type=thresholds_list, default="12,20,26,32", help="dB, comma-separated"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    thresholds = args.thresholds
    commit = code_version() or "unknown"
    for zoo_model in benchmark_models(args):
        model, test = zoo_model.model, zoo_model.test
        layers = quantizable_layers(model)
        analysis = analyze_errors(model, zoo_model.calibration, lazy=True)
        shared = SharedCalibration(model, zoo_model.calibration)
        fp32 = evaluate_accuracy(model, test, limit=args.limit)
        uniform = BitAllocation.uniform([layer.name for layer in layers])
        print(
            f"\n{zoo_model.reference}, commit {commit}: {args.limit or len(test)} test "
            f"images, FP32 {fp32:.2f} %; weights and activations at 8 bits"
        )
        print("| threshold dB | noise margin | routing x | test loss pp | routing widths per iteration |")
        print("| ---: | --- | ---: | ---: | --- |")
        rows = [("-", "-", uniform)] + [
            (
                f"{threshold:.0f}",
                "yes" if margin else "no",
                routing_at_threshold(layers, analysis, uniform, threshold, noise_margin=margin),
            )
            for threshold in thresholds
            for margin in (True, False)
        ]
        for threshold, margin, allocation in rows:
            quantized = shared.quantize(allocation)
            with native_kernels():
                accuracy = evaluate_accuracy(quantized, test, limit=args.limit)
            report = memory_report(quantization_points(quantized), model)
            print(
                f"| {threshold} | {margin} | {report.routing_reduction:.2f} | {fp32 - accuracy:.2f} | "
                f"{describe(allocation, analysis)} |",
                flush=True,
            )


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
