"""Uniform power-of-two PTQ of zoo models: accuracy per bit-width and per clipping mode.

    python benchmarks/ptq_uniform.py                      # every zoo model, full test set
    python benchmarks/ptq_uniform.py --model zoo:shallowcaps-mnist --limit 2000
    python benchmarks/ptq_uniform.py --model runs/x/best.pt --dataset mnist

Rows: FP32; uniform 8-bit; weights, activations and routing each lowered alone to 6/5/4/3 bits (the others
at 8); and 8-bit with each activation clipping mode. Calibration uses the validation split, accuracy the
test split, measured on the integer model (integer squash and routing included).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from zoo_models import add_model_arguments, benchmark_models

from capsnet_nncf_plugin.errors import run_reporting_user_errors
from capsnet_nncf_plugin.evaluation import evaluate_accuracy
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.observers import CLIP_MODES

BITS = (6, 5, 4, 3)


def configurations() -> list[tuple[str, dict]]:
    rows = [("uniform 8-bit", {})]
    for target in ("weight_bits", "activation_bits", "routing_bits"):
        rows += [(f"{target.split('_')[0]} {bits}-bit", {target: bits}) for bits in BITS]
    rows += [(f"8-bit, clip={mode}", {"clip": mode}) for mode in CLIP_MODES if mode != "hardware"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for zoo_model in benchmark_models(args):
        reference, model, dataset = zoo_model.reference, zoo_model.model, zoo_model.dataset
        test, calibration = zoo_model.test, zoo_model.calibration
        fp32 = evaluate_accuracy(model, test, limit=args.limit, progress=True, description="fp32")
        print(
            f"\n{reference} on {dataset} test ({args.limit or len(test)} images), calibrated on "
            f"{args.calibration} val images"
        )
        print(f"{'configuration':<26}{'accuracy %':>11}{'delta pp':>10}{'seconds':>9}")
        print(f"{'FP32':<26}{fp32:>11.2f}{0:>10.2f}{'':>9}")
        for label, options in configurations():
            started = time.perf_counter()
            quantized = quantize_fx(model, calibration, **options)
            accuracy = evaluate_accuracy(quantized, test, limit=args.limit, progress=True, description=label)
            print(
                f"{label:<26}{accuracy:>11.2f}{accuracy - fp32:>10.2f}{time.perf_counter() - started:>9.1f}",
                flush=True,
            )


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
