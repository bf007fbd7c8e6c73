"""``capsq quantize``: progressive bit-width allocation of a float model, with a report."""

from __future__ import annotations

import argparse

from capsnet_nncf_plugin.cli.options import JOB_OPTIONS, SEARCH_OPTIONS, add_options, config_from_args
from capsnet_nncf_plugin.job.quantize import QuantizeConfig, quantize


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quantize",
        help="search per-layer bit-widths (progressive allocation) and report memory and accuracy",
        description="Run the quantization-error analysis and a bit-width allocation method on the validation "
        "split, then measure the integer model on the test split. Writes allocation.json, report.md, "
        "error_analysis.json (per layer, block and routing iteration, with rankings) and plots to --out.",
    )
    add_options(parser, (*JOB_OPTIONS, *SEARCH_OPTIONS, "compare"), QuantizeConfig)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = config_from_args(QuantizeConfig, args)
    result = quantize(config, progress=not args.no_progress)
    info = result.allocation.info
    print(
        f"{result.allocation.method}: weights {info['weight_reduction']:.2f}x, activations "
        f"{info['activation_reduction']:.2f}x smaller; test accuracy {result.accuracy:.2f} % "
        f"(FP32 {result.fp32_accuracy:.2f} %, {result.accuracy - result.fp32_accuracy:+.2f} pp); "
        f"search {info['search_seconds']:.0f} s, {info['evaluations']} evaluations"
    )
    print(f"report: {config.out_dir}/report.md")
    return 0
