"""``capsq run``: the main job, end to end."""

from __future__ import annotations

import argparse

from capsnet_nncf_plugin.cli.options import JOB_OPTIONS, SEARCH_OPTIONS, add_options, config_from_args
from capsnet_nncf_plugin.job.run import RunConfig, run, summary_table

#: The options only ``capsq run`` takes: the flow, per-layer bits from a file or uniform bits, observers.
RUN_OPTIONS = (
    "flow",
    "nncf_config",
    "allocation",
    "weight_bits",
    "activation_bits",
    "routing_bits",
    "weight_observer",
    "activation_observer",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="the main job: FP32 accuracy, power-of-two quantization, integer accuracy, memory",
        description="Evaluate a float model, search per-layer bit-widths (--method), quantize it with "
        "power-of-two scales (--flow fx: torch.ao FX; nncf: nncf.quantize) with integer squash and routing, "
        "export QDQ ONNX and run it in onnxruntime, account memory and latency; print a summary table and "
        "write summary.json, report.md, allocation.json and model.onnx to --out.",
    )
    add_options(parser, (*JOB_OPTIONS, *SEARCH_OPTIONS, *RUN_OPTIONS), RunConfig)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = config_from_args(RunConfig, args)
    result = run(config, progress=not args.no_progress)
    print(summary_table(result))
    print(f"\nreport: {config.out_dir}/report.md")
    return 0
