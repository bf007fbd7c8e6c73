"""Progressive bit-width allocation on zoo models: every method against uniform 8-bit and Q-CapsNets.

    python benchmarks/allocation.py                                  # every zoo model, tolerance 0.1 pp
    python benchmarks/allocation.py --model runs/x/best.pt --validation-limit 2000 --limit 2000

For each model: one error analysis shared by the methods, then each method's search on the validation
split; the integer model of each allocation is measured on the test split. Columns: weight and activation
memory reduction against FP32, test accuracy loss (pp), search time (s, error analysis excluded) and the
number of accuracy evaluations. The last lines say which approaches reach the Q-CapsNets baseline's weight
reduction at the same tolerance.
"""

from __future__ import annotations

import argparse
import time
import warnings

from capsnet_nncf_plugin.allocation import allocate, analyze_errors, available_methods
from capsnet_nncf_plugin.data import load_dataset
from capsnet_nncf_plugin.evaluation import evaluate_accuracy, iterate_batches
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.models import available_pretrained, open_checkpoint

PROGRESSIVE = ("progressive-descent", "error-guided", "block-routing")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", help="zoo:NAME or a checkpoint (repeatable)")
    parser.add_argument("--tolerance", type=float, default=0.1)
    parser.add_argument("--calibration", type=int, default=512)
    parser.add_argument("--validation-limit", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="test images (default: all)")
    parser.add_argument("--method", action="append", help="methods to run (default: all)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    references = args.model or [f"zoo:{name}" for name in available_pretrained()]
    if not references:
        raise SystemExit("the zoo is empty; pass --model CHECKPOINT")
    methods = args.method or available_methods()
    for reference in references:
        checkpoint = open_checkpoint(reference)
        checkpoint.model.without_decoder()
        model = checkpoint.model.eval()
        dataset = checkpoint.metadata["dataset"]
        validation, test = load_dataset(dataset, "val"), load_dataset(dataset, "test")
        calibration = [images for images, _ in iterate_batches(validation, 128, args.calibration)]
        fp32 = evaluate_accuracy(model, test, limit=args.limit, progress=True, description="FP32")
        started = time.perf_counter()
        analysis = analyze_errors(model, calibration[:2], progress=True)
        seconds = time.perf_counter() - started
        print(f"\n{reference} ({dataset}): FP32 test {fp32:.2f} %, error analysis {seconds:.0f} s")
        header = ("method", "weights x", "acts x", "test %", "loss pp", "search s", "evals")
        print(f"{header[0]:<22}" + "".join(f"{h:>10}" for h in header[1:]))
        rows = {}
        for method in methods:
            allocation = allocate(
                model,
                calibration,
                validation,
                method=method,
                tolerance=args.tolerance,
                validation_limit=args.validation_limit,
                analysis=analysis,
                progress=True,
            )
            quantized = quantize_fx(model, calibration, clip=allocation.info["clip"], allocation=allocation)
            accuracy = evaluate_accuracy(quantized, test, limit=args.limit, progress=True, description=method)
            info = allocation.info
            rows[method] = info
            cells = (
                f"{info['weight_reduction']:.2f}",
                f"{info['activation_reduction']:.2f}",
                f"{accuracy:.2f}",
                f"{fp32 - accuracy:.2f}",
                f"{info['search_seconds']:.0f}",
                str(info["evaluations"]),
            )
            print(f"{method:<22}" + "".join(f"{c:>10}" for c in cells))
        if "qcapsnets" in rows:
            baseline = rows["qcapsnets"]["weight_reduction"]
            reached = [m for m in PROGRESSIVE if m in rows and rows[m]["weight_reduction"] >= baseline]
            print(f"reach the Q-CapsNets weight reduction ({baseline:.2f}x): {', '.join(reached) or 'none'}")


if __name__ == "__main__":
    main()
