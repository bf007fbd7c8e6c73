"""onnxruntime against the torch integer model: bit-exact parity, unoptimised and fully optimised.

    python benchmarks/ort_parity.py                                   # every zoo model, 8 bits, full test set
    python benchmarks/ort_parity.py --model zoo:deepcaps-mnist --allocation runs/q/allocation.json
    python benchmarks/ort_parity.py --model runs/x/best.pt --limit 2000

Each model is quantized with the FX flow (uniform 8 bits, or ``--allocation``), exported with
``export_onnx`` and run in onnxruntime with the custom-op library twice: with graph optimisations
disabled (every Q/DQ and float op as written: the scores must equal torch's bit for bit) and with all
optimisations on (QLinearConv and friends fused). Columns: accuracy in torch and in onnxruntime, the
share of images whose scores are bit-identical, the share with the same top-1 class, and the largest
score difference.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import warnings
from pathlib import Path

import onnxruntime
import torch
from zoo_models import add_model_arguments, benchmark_models

from capsnet_nncf_plugin.core import BitAllocation
from capsnet_nncf_plugin.errors import run_reporting_user_errors
from capsnet_nncf_plugin.evaluation import compare_classifiers
from capsnet_nncf_plugin.export import export_onnx
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.runtime import InferenceSession, OnnxClassifier

LEVELS = {
    "disabled": onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class ScoreCache:
    """The torch model's scores per input batch: the second level compares without recomputing them
    (an integer DeepCaps pass over the test set takes minutes)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.scores: dict[str, torch.Tensor] = {}

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        key = hashlib.sha256(images.numpy().tobytes()).hexdigest()
        if key not in self.scores:
            self.scores[key] = self.model(images)
        return self.scores[key]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--allocation", default=None, help="a BitAllocation JSON instead of 8 bits")
    add_model_arguments(parser)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    allocation = None if args.allocation is None else BitAllocation.load(args.allocation)
    print(f"{'model':<28} {'ORT optimisations':<18}{'torch %':>9}{'ORT %':>8}", end="")
    print(f"{'identical %':>13}{'same top-1 %':>14}{'max |diff|':>12}")
    for zoo_model in benchmark_models(args):
        reference, test, calibration = zoo_model.reference, zoo_model.test, zoo_model.calibration
        model = quantize_fx(zoo_model.model, calibration, allocation=allocation)
        reference_scores = ScoreCache(model)
        with tempfile.TemporaryDirectory() as folder:
            exported = export_onnx(model, calibration[0][:2], Path(folder) / "model.onnx")
            for level, setting in LEVELS.items():
                options = onnxruntime.SessionOptions()
                options.graph_optimization_level = setting
                session = OnnxClassifier(InferenceSession(str(exported.path), sess_options=options))
                agreement = compare_classifiers(
                    reference_scores, session, test, limit=args.limit, progress=True, description=level
                )
                print(
                    f"{reference:<28} {level:<18}{agreement.reference_accuracy:>9.2f}"
                    f"{agreement.candidate_accuracy:>8.2f}{agreement.identical_outputs:>13.2f}"
                    f"{agreement.same_top1:>14.2f}{agreement.max_abs_difference:>12.3g}",
                    flush=True,
                )


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
