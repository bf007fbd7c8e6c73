"""``capsq run``: the main job, end to end."""

from __future__ import annotations

import argparse

from capsnet_nncf_plugin.allocation.evaluator import CRITERIA
from capsnet_nncf_plugin.cli.arguments import bit_width, non_negative_float, positive_int
from capsnet_nncf_plugin.observers import CLIP_MODES
from capsnet_nncf_plugin.pipeline import FLOWS, RunConfig, run, summary_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="the main job: FP32 accuracy, power-of-two quantization, integer accuracy, memory",
        description="Evaluate a float model, search per-layer bit-widths (--method), quantize it with "
        "power-of-two scales (--flow fx: torch.ao FX; nncf: nncf.quantize) with integer squash and routing, "
        "export QDQ ONNX and run it in onnxruntime, account memory and latency; print a summary table and "
        "write summary.json, report.md, allocation.json and model.onnx to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = RunConfig()
    parser.add_argument("--model", default=defaults.model, help="zoo:NAME or a checkpoint of `capsq train`")
    parser.add_argument("--dataset", default=None, help="dataset (default: the model's own)")
    parser.add_argument("--data-root", default=None, help="directory with the official dataset files")
    parser.add_argument("--weight-bits", type=bit_width, default=defaults.weight_bits)
    parser.add_argument("--activation-bits", type=bit_width, default=defaults.activation_bits)
    parser.add_argument("--routing-bits", type=bit_width, default=defaults.routing_bits)
    parser.add_argument("--clip", default=defaults.clip, choices=CLIP_MODES, help="activation clipping mode")
    parser.add_argument(
        "--flow", default=defaults.flow, choices=FLOWS, help="torch.ao FX or NNCF quantization"
    )
    parser.add_argument(
        "--nncf-config", default=None, help="JSON/YAML nncf.quantize configuration for --flow nncf"
    )
    parser.add_argument(
        "--allocation", default=None, help="BitAllocation JSON from `capsq quantize` (else uniform bits)"
    )
    parser.add_argument(
        "--method",
        default=defaults.method,
        help="allocation search before quantizing ('none': uniform --weight/--activation/--routing-bits); "
        "see `capsq quantize`",
    )
    parser.add_argument(
        "--tolerance", type=non_negative_float, default=defaults.tolerance, help="search tolerance, pp"
    )
    parser.add_argument("--criterion", default=defaults.criterion, choices=CRITERIA, help="search criterion")
    parser.add_argument(
        "--bias-correction",
        action="store_true",
        help="FX flow: each layer's bias absorbs the mean output error of its quantized weights",
    )
    parser.add_argument(
        "--validation-limit",
        type=positive_int,
        default=defaults.validation_limit,
        help="validation images the search measures on",
    )
    parser.add_argument(
        "--weight-observer", default=None, help="weight observer by name (see `capsq plugins`; FX flow)"
    )
    parser.add_argument(
        "--activation-observer", default=None, help="activation observer by name (see `capsq plugins`)"
    )
    parser.add_argument(
        "--calibration",
        type=positive_int,
        default=defaults.calibration_images,
        help="validation images used for calibration",
    )
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="evaluate on the first N test images only"
    )
    parser.add_argument("--out", default=defaults.out_dir, help="report folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    config = RunConfig(
        model=args.model,
        dataset=args.dataset,
        data_root=args.data_root,
        weight_bits=args.weight_bits,
        activation_bits=args.activation_bits,
        routing_bits=args.routing_bits,
        clip=args.clip,
        flow=args.flow,
        nncf_config=args.nncf_config,
        allocation=args.allocation,
        method=args.method,
        tolerance=args.tolerance,
        criterion=args.criterion,
        bias_correction=args.bias_correction,
        validation_limit=args.validation_limit,
        weight_observer=args.weight_observer,
        activation_observer=args.activation_observer,
        calibration_images=args.calibration,
        test_limit=args.limit,
        out_dir=args.out,
    )
    result = run(config, progress=not args.no_progress)
    print(summary_table(result))
    print(f"\nreport: {config.out_dir}/report.md")
    return 0
