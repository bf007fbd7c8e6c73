"""The NNCF flow against the FX flow on zoo models: accuracy in torch and onnxruntime, memory, time.

    python benchmarks/nncf_flow.py                                   # every zoo model, full test set
    python benchmarks/nncf_flow.py --model zoo:shallowcaps-mnist --allocation runs/q/allocation.json
    python benchmarks/nncf_flow.py --model runs/x/best.pt --limit 2000

Rows per model: FP32; the FX flow and the NNCF flow at uniform 8 bits, and with ``--allocation`` both with
that allocation. The NNCF flow gets an 8-bit ``nncf.quantize`` configuration (preset performance, CPU,
subset of the same calibration batches). Each integer model is exported to QDQ ONNX and evaluated in
onnxruntime with the custom-op library on the same images; "identical" is the share of images whose
scores are bit-identical to torch's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from zoo_models import add_model_arguments, benchmark_models

from capsnet_nncf_plugin.allocation import memory_report
from capsnet_nncf_plugin.core import BitAllocation
from capsnet_nncf_plugin.errors import run_reporting_user_errors
from capsnet_nncf_plugin.evaluation import compare_classifiers, evaluate_accuracy
from capsnet_nncf_plugin.export import export_onnx
from capsnet_nncf_plugin.fx import quantization_points, quantize_fx
from capsnet_nncf_plugin.nncf import quantize
from capsnet_nncf_plugin.runtime import InferenceSession, OnnxClassifier

NNCF_CONFIG = {"preset": "performance", "target_device": "CPU"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--allocation", default=None, help="a BitAllocation JSON to compare as well")
    parser.add_argument(
        "--no-uniform", action="store_true", help="with --allocation: only the allocation rows"
    )
    parser.add_argument("--clip", default="minmax", help="clipping of points NNCF does not calibrate")
    add_model_arguments(parser)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    allocation = None if args.allocation is None else BitAllocation.load(args.allocation)
    for zoo_model in benchmark_models(args):
        reference, fp32_model, dataset = zoo_model.reference, zoo_model.model, zoo_model.dataset
        test, calibration = zoo_model.test, zoo_model.calibration
        fp32 = evaluate_accuracy(fp32_model, test, limit=args.limit, progress=True, description="fp32")
        print(f"\n{reference} on {dataset} test ({args.limit or len(test)} images)")
        header = f"{'flow':<30}{'torch %':>9}{'delta pp':>10}{'ORT %':>8}{'identical %':>13}"
        print(f"{header}{'weights x':>11}{'acts x':>8}{'seconds':>9}")
        print(f"{'FP32':<30}{fp32:>9.2f}")
        variants = [] if args.no_uniform and allocation else [("uniform 8-bit", None)]
        variants += [("allocation", allocation)] if allocation else []
        for label, bits in variants:
            for flow in ("fx", "nncf"):
                started = time.perf_counter()
                if flow == "fx":
                    model = quantize_fx(fp32_model, calibration, clip=args.clip, allocation=bits)
                else:
                    section = {"clip": args.clip}
                    if bits is not None:
                        section["allocation"] = str(bits.save(Path(tempfile.mkdtemp()) / "allocation.json"))
                    config = {**NNCF_CONFIG, "subset_size": len(calibration), "capsnet": section}
                    model = quantize(fp32_model, calibration, config)
                seconds = time.perf_counter() - started
                with tempfile.TemporaryDirectory() as folder:
                    exported = export_onnx(model, calibration[0][:2], Path(folder) / "model.onnx")
                    onnx_model = OnnxClassifier(InferenceSession(str(exported.path)))
                    agreement = compare_classifiers(
                        model,
                        onnx_model,
                        test,
                        limit=args.limit,
                        progress=True,
                        description=f"{flow} {label}",
                    )
                memory = memory_report(quantization_points(model), fp32_model)
                print(
                    f"{flow + ' ' + label:<30}{agreement.reference_accuracy:>9.2f}"
                    f"{agreement.reference_accuracy - fp32:>10.2f}{agreement.candidate_accuracy:>8.2f}"
                    f"{agreement.identical_outputs:>13.2f}{memory.weight_reduction:>11.2f}"
                    f"{memory.activation_reduction:>8.2f}{seconds:>9.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
