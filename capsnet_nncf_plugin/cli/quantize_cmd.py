"""``capsq quantize``: progressive bit-width allocation of a float model, with a report."""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

from capsnet_nncf_plugin.allocation import allocate, analyze_errors, available_methods
from capsnet_nncf_plugin.allocation.allocate import ANALYSIS_IMAGES, analysis_batches
from capsnet_nncf_plugin.allocation.evaluator import CRITERIA
from capsnet_nncf_plugin.allocation.methods.builtin import DEFAULT_METHOD
from capsnet_nncf_plugin.allocation.report import (
    plot_accuracy_vs_memory,
    plot_bits,
    plot_block_sensitivity,
    plot_routing_sensitivity,
    plot_sensitivity,
    write_markdown,
)
from capsnet_nncf_plugin.allocation.sensitivity import CANDIDATE_BITS
from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.cli.arguments import bit_width, non_negative_float, positive_float, positive_int
from capsnet_nncf_plugin.data import load_dataset
from capsnet_nncf_plugin.evaluation import evaluate_accuracy, iterate_batches
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.models import open_checkpoint
from capsnet_nncf_plugin.observers import CLIP_MODES

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quantize",
        help="search per-layer bit-widths (progressive allocation) and report memory and accuracy",
        description="Run the quantization-error analysis and a bit-width allocation method on the validation "
        "split, then measure the integer model on the test split. Writes allocation.json, report.md, "
        "error_analysis.json (per layer, block and routing iteration, with rankings) and plots to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", default="zoo:shallowcaps-mnist", help="zoo:NAME or a checkpoint")
    parser.add_argument("--dataset", default=None, help="dataset (default: the model's own)")
    parser.add_argument("--data-root", default=None, help="directory with the official dataset files")
    parser.add_argument("--method", default=DEFAULT_METHOD, help=f"one of {', '.join(available_methods())}")
    parser.add_argument(
        "--tolerance", type=non_negative_float, default=0.1, help="accepted accuracy loss, pp"
    )
    parser.add_argument("--clip", default="hardware", choices=CLIP_MODES, help="activation clipping mode")
    parser.add_argument(
        "--criterion",
        default="losses",
        choices=CRITERIA,
        help="'losses': also at most TOLERANCE %% of FP32-correct images lost (no credit for lucky gains); "
        "'accuracy': the accuracy difference alone",
    )
    parser.add_argument(
        "--weight-memory-budget", type=positive_float, default=None, help="MB, for budgeted methods"
    )
    parser.add_argument(
        "--calibration", type=positive_int, default=512, help="validation images for calibration"
    )
    parser.add_argument(
        "--validation-limit", type=positive_int, default=None, help="validation images the search uses"
    )
    parser.add_argument("--limit", type=positive_int, default=None, help="test images for the final accuracy")
    parser.add_argument(
        "--analysis-images",
        type=positive_int,
        default=ANALYSIS_IMAGES,
        help="calibration images of the error analysis",
    )
    parser.add_argument(
        "--analysis-bits",
        type=bit_width,
        nargs="+",
        default=list(CANDIDATE_BITS),
        help="candidate widths of the error analysis",
    )
    parser.add_argument(
        "--bias-correction",
        action="store_true",
        help="each layer's bias absorbs the mean output error of its quantized weights (analysis and search)",
    )
    parser.add_argument(
        "--analysis-cache",
        default=None,
        help="JSON file keeping the error-analysis entries: a rerun on the same model, calibration and "
        "settings (another --method or --tolerance) reads them instead of measuring",
    )
    parser.add_argument("--compare", action="store_true", help="also run every other method for the plots")
    parser.add_argument("--out", default="reports/quantize", help="report folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.method not in available_methods():
        raise ValueError(f"unknown method {args.method!r}; available: {', '.join(available_methods())}")
    progress = not args.no_progress
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = open_checkpoint(args.model)
    checkpoint.model.without_decoder()
    model = checkpoint.model.eval()
    dataset = args.dataset or checkpoint.metadata.get("dataset")
    if not dataset:
        raise ValueError(f"{args.model} does not record its dataset; pass --dataset NAME")
    validation = load_dataset(dataset, "val", root=args.data_root)
    test = load_dataset(dataset, "test", root=args.data_root)
    calibration = [images for images, _ in iterate_batches(validation, 128, args.calibration)]
    warnings.simplefilter("ignore")

    analysis = analyze_errors(
        model,
        analysis_batches(calibration, args.analysis_images),
        candidate_bits=args.analysis_bits,
        clip=args.clip,
        progress=progress,
        bias_correction=args.bias_correction,
        cache=args.analysis_cache,
    )
    analysis.save(out / "error_analysis.json")
    plot_sensitivity(out / "sensitivity.png", analysis)
    plot_block_sensitivity(out / "block_sensitivity.png", analysis)
    plot_routing_sensitivity(out / "routing_sensitivity.png", analysis)
    budget = None if args.weight_memory_budget is None else args.weight_memory_budget * 8e6
    others = [m for m in available_methods() if m != args.method]
    methods = [args.method] + (others if args.compare else [m for m in others if m == "uniform-8"])
    results = {}
    for method in methods:
        started = time.perf_counter()
        results[method] = allocate(
            model,
            calibration,
            validation,
            method=method,
            tolerance=args.tolerance,
            weight_memory_budget=budget,
            clip=args.clip,
            validation_limit=args.validation_limit,
            analysis=analysis,
            progress=progress,
            criterion=args.criterion,
            bias_correction=args.bias_correction,
        )
        logger.info("%s: %.0f s", method, time.perf_counter() - started)
    allocation = results[args.method]
    allocation.save(out / "allocation.json")

    fp32 = evaluate_accuracy(model, test, limit=args.limit, progress=progress, description="FP32 test")
    # With the clip and bias correction the allocation recorded, as its search measured it.
    quantized = quantize_fx(model, calibration, allocation=allocation)
    accuracy = evaluate_accuracy(
        quantized, test, limit=args.limit, progress=progress, description="integer test"
    )
    test_summary = {"fp32_accuracy": fp32, "accuracy": accuracy, "images": args.limit or len(test)}
    comparison = [{"method": m, **r.info} for m, r in results.items()]
    write_markdown(out / "report.md", f"capsq quantize: {args.model}", allocation, test_summary, comparison)
    plot_bits(out / "bits_per_layer.png", allocation)
    plot_accuracy_vs_memory(out / "accuracy_vs_memory.png", comparison)
    write_text_atomically(
        out / "summary.json",
        json.dumps({"test": test_summary, "methods": comparison}, indent=2, default=float) + "\n",
    )
    info = allocation.info
    print(
        f"{args.method}: weights {info['weight_reduction']:.2f}x, activations "
        f"{info['activation_reduction']:.2f}x smaller; test accuracy {accuracy:.2f} % "
        f"(FP32 {fp32:.2f} %, {accuracy - fp32:+.2f} pp); "
        f"search {info['search_seconds']:.0f} s, {info['evaluations']} evaluations"
    )
    print(f"report: {out / 'report.md'}")
    return 0
