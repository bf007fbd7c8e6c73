"""Progressive bit-width allocation on zoo models: every method against uniform 8-bit and Q-CapsNets.

    python benchmarks/allocation.py                                  # every zoo model, tolerance 0.1 pp
    python benchmarks/allocation.py --model runs/x/best.pt --validation-limit 2000 --limit 2000
    python benchmarks/allocation.py --markdown docs/results.md      # regenerates the reproduction table

For each model: one error analysis shared by the methods, then each method's search on the validation
split; the integer model of each allocation is measured on the test split in torch and, exported to QDQ
ONNX, in onnxruntime with the custom-op library. Columns: weight and activation memory reduction against
FP32, test accuracy in torch and onnxruntime, accuracy loss (pp), search time (s, error analysis excluded)
and the number of accuracy evaluations. The last lines say which approaches reach the Q-CapsNets
baseline's weight reduction at the same tolerance.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

from capsnet_nncf_plugin.allocation import allocate, analyze_errors, available_methods
from capsnet_nncf_plugin.allocation.allocate import analysis_batches
from capsnet_nncf_plugin.allocation.evaluator import CRITERIA
from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.cli.arguments import non_negative_float, positive_int
from capsnet_nncf_plugin.data import load_dataset
from capsnet_nncf_plugin.errors import run_reporting_user_errors
from capsnet_nncf_plugin.evaluation import compare_classifiers, evaluate_accuracy, iterate_batches
from capsnet_nncf_plugin.export import export_onnx
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.models import available_pretrained, open_checkpoint
from capsnet_nncf_plugin.runtime import InferenceSession, OnnxClassifier

PROGRESSIVE = ("progressive-descent", "error-guided", "block-routing")

PUBLISHED = """## Published figures (for comparison)

| work | model / data | weights x | activations x | accuracy loss |
| --- | --- | ---: | ---: | ---: |
| Raji et al., IEEE Access 13 (2025), best approach | DeepCaps / CIFAR-10 | 7.02 | 3.74 | 0.09 pp |
| Q-CapsNets, Marchisio et al., DAC 2020 | DeepCaps / CIFAR-10 | 6.2 | - | 0.15 pp |

The zoo has no CIFAR-10 model (the dataset is in no registry reachable here); the rows above are the
papers' own numbers, beside ours on MNIST and Fashion-MNIST. Memory definitions: docs/memory.md.
"""


def integer_accuracies(quantized, calibration, test, limit, label) -> tuple[float, float]:
    """Test accuracy of the integer model in torch and, exported to QDQ ONNX, in onnxruntime."""
    with tempfile.TemporaryDirectory() as folder:
        exported = export_onnx(quantized, calibration[0][:2], Path(folder) / "model.onnx")
        onnx_model = OnnxClassifier(InferenceSession(str(exported.path)))
        agreement = compare_classifiers(
            quantized, onnx_model, test, limit=limit, progress=True, description=label
        )
    return agreement.reference_accuracy, agreement.candidate_accuracy


def markdown(
    tables: list[tuple[str, float, dict[str, dict]]], command: str, criterion: str, bias_correction: bool
) -> str:
    lines = [
        "# Results",
        "",
        f"Produced by `{command}`; every number below comes from that one run. Test-set accuracy of the",
        "integer model (integer squash and routing), in torch and in onnxruntime with the custom-op library.",
        f"Search criterion: `{criterion}` (what it means: docs/allocation.md). Bias correction: "
        f"{'on (not in the Q-CapsNets baseline, which has none)' if bias_correction else 'off'}.",
        "",
        "| model | method | FP32 % | torch % | onnxruntime % | loss pp | weights x | activations x "
        "| search s | evals |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for reference, fp32, rows in tables:
        for method, row in rows.items():
            lines.append(
                f"| {reference} | {method} | {fp32:.2f} | {row['torch']:.2f} | {row['onnxruntime']:.2f} | "
                f"{fp32 - row['torch']:.2f} | {row['weight_reduction']:.2f} | "
                f"{row['activation_reduction']:.2f} | {row['search_seconds']:.0f} | {row['evaluations']} |"
            )
    return "\n".join(lines) + "\n\n" + PUBLISHED


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", help="zoo:NAME or a checkpoint (repeatable)")
    parser.add_argument("--tolerance", type=non_negative_float, default=0.1)
    parser.add_argument("--calibration", type=positive_int, default=512)
    parser.add_argument("--validation-limit", type=positive_int, default=None)
    parser.add_argument(
        "--criterion", choices=CRITERIA, default="losses", help="what 'accuracy holds' means in the search"
    )
    parser.add_argument("--limit", type=positive_int, default=None, help="test images (default: all)")
    parser.add_argument(
        "--bias-correction", action="store_true", help="bias correction in the analysis and every search"
    )
    parser.add_argument("--method", action="append", help="methods to run (default: all)")
    parser.add_argument("--markdown", default=None, help="also write the table as Markdown to this file")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    references = args.model or [f"zoo:{name}" for name in available_pretrained()]
    if not references:
        raise SystemExit("the zoo is empty; pass --model CHECKPOINT")
    methods = args.method or available_methods()
    tables = []
    for reference in references:
        checkpoint = open_checkpoint(reference)
        checkpoint.model.without_decoder()
        model = checkpoint.model.eval()
        dataset = checkpoint.metadata["dataset"]
        validation, test = load_dataset(dataset, "val"), load_dataset(dataset, "test")
        calibration = [images for images, _ in iterate_batches(validation, 128, args.calibration)]
        fp32 = evaluate_accuracy(model, test, limit=args.limit, progress=True, description="FP32")
        started = time.perf_counter()
        analysis = analyze_errors(
            model, analysis_batches(calibration), progress=True, bias_correction=args.bias_correction
        )
        seconds = time.perf_counter() - started
        print(f"\n{reference} ({dataset}): FP32 test {fp32:.2f} %, error analysis {seconds:.0f} s")
        header = ("method", "weights x", "acts x", "test %", "ORT %", "loss pp", "search s", "evals")
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
                criterion=args.criterion,
                bias_correction=args.bias_correction,
                analysis=analysis,
                progress=True,
            )
            # With the clip and bias correction the allocation recorded, as its search measured it.
            quantized = quantize_fx(model, calibration, allocation=allocation)
            accuracy, onnx_accuracy = integer_accuracies(quantized, calibration, test, args.limit, method)
            info = allocation.info
            rows[method] = {**info, "torch": accuracy, "onnxruntime": onnx_accuracy}
            cells = (
                f"{info['weight_reduction']:.2f}",
                f"{info['activation_reduction']:.2f}",
                f"{accuracy:.2f}",
                f"{onnx_accuracy:.2f}",
                f"{fp32 - accuracy:.2f}",
                f"{info['search_seconds']:.0f}",
                str(info["evaluations"]),
            )
            print(f"{method:<22}" + "".join(f"{c:>10}" for c in cells))
        if "qcapsnets" in rows:
            baseline = rows["qcapsnets"]["weight_reduction"]
            reached = [m for m in PROGRESSIVE if m in rows and rows[m]["weight_reduction"] >= baseline]
            print(f"reach the Q-CapsNets weight reduction ({baseline:.2f}x): {', '.join(reached) or 'none'}")
        tables.append((reference, fp32, rows))
    if args.markdown:
        command = "python benchmarks/allocation.py " + " ".join(sys.argv[1:])
        write_text_atomically(
            Path(args.markdown), markdown(tables, command.strip(), args.criterion, args.bias_correction)
        )


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
