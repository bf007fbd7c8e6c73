"""Capture on CapsNets written the way public code writes them (tests/capture/user_models): what is
recognized, and how the captured model quantizes.

    python benchmarks/capture.py                       # every style, 2,000 test images, 500 for parity
    python benchmarks/capture.py --style einsum --limit 500

Columns: the modules the capture built (p = primary capsules, c = class capsules with integer routing,
l = capsule length, f = a routing left float), the integer model's routing quantization points, the test
accuracy loss against the float model with uniform 8-bit and 4-bit weights (8-bit activations and routing,
FX flow), the same at 8 bits through the NNCF adapter, and the share of test images whose scores
onnxruntime reproduces bit for bit (the 8-bit FX model, exported with the custom-op library).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
# This script's own folder would make `capture` this file; the user models are the package tests/capture.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(TESTS), *(entry for entry in sys.path if Path(entry or ".").resolve() != HERE)]

from capture.user_models import ALL_STYLES, load_trained  # noqa: E402

from capsnet_nncf_plugin.capture import capture_with_report  # noqa: E402
from capsnet_nncf_plugin.cli.arguments import positive_int  # noqa: E402
from capsnet_nncf_plugin.data import load_dataset  # noqa: E402
from capsnet_nncf_plugin.errors import run_reporting_user_errors  # noqa: E402
from capsnet_nncf_plugin.evaluation import compare_classifiers, evaluate_accuracy, iterate_batches  # noqa: E402
from capsnet_nncf_plugin.export import export_onnx  # noqa: E402
from capsnet_nncf_plugin.fx import quantize_fx  # noqa: E402
from capsnet_nncf_plugin.nncf import quantize as nncf_quantize  # noqa: E402
from capsnet_nncf_plugin.quantized import quantization_points  # noqa: E402
from capsnet_nncf_plugin.runtime import InferenceSession, OnnxClassifier  # noqa: E402

SYMBOLS = {"primary_capsules": "p", "class_capsules": "c", "capsule_length": "l"}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--style", action="append", choices=list(ALL_STYLES), help="styles (default: all)")
    parser.add_argument("--limit", type=positive_int, default=2000, help="test images for the accuracies")
    parser.add_argument("--parity", type=positive_int, default=500, help="test images for onnxruntime parity")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    validation, test = load_dataset("mnist", "val"), load_dataset("mnist", "test")
    calibration = [images for images, _ in iterate_batches(validation, 128, 512)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    print(f"commit {commit.strip() or 'unknown'}; {args.limit} test images, parity on {args.parity}")
    header = (
        "style",
        "captured",
        "routing pts",
        "FP32 %",
        "8-bit pp",
        "4-bit pp",
        "NNCF 8 pp",
        "ORT same scores %",
        "ORT same top-1 %",
        "s",
    )
    print("| " + " | ".join(header) + " |")
    print("| --- | --- | " + " | ".join(["---:"] * (len(header) - 2)) + " |")
    for style in args.style or list(ALL_STYLES):
        started = time.perf_counter()
        model = load_trained(style)
        report = capture_with_report(model, calibration[0][:4]).report
        captured = "".join(SYMBOLS.get(kind, "") for kind in report.kinds()) + (
            "f" if report.float_regions else ""
        )
        fp32 = evaluate_accuracy(model, test, limit=args.limit)
        losses = []
        for bits in (8, 4):
            integer = quantize_fx(model, calibration, weight_bits=bits)
            losses.append(fp32 - evaluate_accuracy(integer, test, limit=args.limit))
            if bits == 8:
                eight_bit = integer
        nncf_loss = fp32 - evaluate_accuracy(
            nncf_quantize(model, calibration, {"subset_size": len(calibration)}), test, limit=args.limit
        )
        routing = sum(point.kind == "routing" for point in quantization_points(eight_bit))
        with tempfile.TemporaryDirectory() as folder:
            exported = export_onnx(eight_bit, calibration[0][:2], Path(folder) / "model.onnx")
            session = OnnxClassifier(InferenceSession(str(exported.path)))
            agreement = compare_classifiers(eight_bit, session, test, limit=args.parity)
        cells = (
            style,
            "".join(sorted(captured)),
            str(routing),
            f"{fp32:.2f}",
            f"{losses[0]:+.2f}",
            f"{losses[1]:+.2f}",
            f"{nncf_loss:+.2f}",
            f"{agreement.identical_outputs:.1f}",
            f"{agreement.same_top1:.1f}",
            f"{time.perf_counter() - started:.0f}",
        )
        print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
