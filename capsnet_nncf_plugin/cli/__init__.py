"""The ``capsq`` command line: one subcommand module per job, each exposing ``register(subparsers)``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from capsnet_nncf_plugin.cli import (
    data_cmd,
    eval_cmd,
    plugins_cmd,
    quantize_cmd,
    run_cmd,
    train_cmd,
    zoo_cmd,
)
from capsnet_nncf_plugin.errors import run_reporting_user_errors
from capsnet_nncf_plugin.heap import keep_freed_memory

_SUBCOMMAND_MODULES = (run_cmd, quantize_cmd, data_cmd, train_cmd, eval_cmd, zoo_cmd, plugins_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capsq",
        description="Capsule-network quantization toolkit: datasets, training, evaluation and "
        "power-of-two post-training quantization for torch.ao FX, NNCF and onnxruntime.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _SUBCOMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # The exporters log every rewrite at INFO; only the plugin's own progress belongs on the console.
        for chatty in ("onnxscript", "onnx_ir", "torch.onnx", "torch.export", "torch._dynamo"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    keep_freed_memory()  # every job runs batches of large tensors (heap.py: DeepCaps FP32 1.5x faster)
    if args.verbose:  # the traceback too
        return int(args.func(args) or 0)
    return run_reporting_user_errors(lambda: args.func(args), f"capsq {args.command}")


if __name__ == "__main__":
    sys.exit(main())
