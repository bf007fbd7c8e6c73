"""Weight rounding of the FX flow per weight width, on zoo models: nearest, bias-corrected, GPTQ.

    python benchmarks/weight_rounding.py                                  # every zoo model, full test set
    python benchmarks/weight_rounding.py --model zoo:shallowcaps-mnist --limit 2000 --bits 3 2

For each uniform weight width (activations and routing at 8 bits, ``--clip`` clipping), the integer model
with weights rounded to nearest, rounded to nearest with bias correction, and rounded by GPTQ (docs/fx.md):
test accuracy, SQNR of its class scores against FP32's, and how many top-1 decisions agree with FP32.
Calibration uses the validation split; all three variants share its scales and bits.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch
from zoo_models import add_model_arguments, benchmark_models

from capsnet_nncf_plugin.allocation.sensitivity import sqnr_db
from capsnet_nncf_plugin.cli.arguments import bit_width
from capsnet_nncf_plugin.errors import run_reporting_user_errors
from capsnet_nncf_plugin.evaluation import iterate_batches
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.observers import CLIP_MODES

WEIGHT_BITS = (5, 4, 3, 2)
BATCH = 250
#: The variants, by column name: ``quantize_fx`` options.
VARIANTS = {
    "nearest": {"weight_rounding": "nearest"},
    "corrected": {"weight_rounding": "nearest", "bias_correction": True},
    "gptq": {"weight_rounding": "gptq"},
}
MEASURES = ("accuracy %", "SQNR dB", "agree %")


@torch.no_grad()
def scores_of(model: torch.nn.Module, batches: list[torch.Tensor]) -> torch.Tensor:
    outputs = [model(images) for images in batches]
    return torch.cat([out.dequantize() if out.is_quantized else out for out in outputs]).float()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument("--bits", type=bit_width, nargs="+", default=list(WEIGHT_BITS), help="weight widths")
    parser.add_argument("--clip", choices=CLIP_MODES, default="hardware", help="activation clipping")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for zoo_model in benchmark_models(args):
        count = args.limit or len(zoo_model.test)
        pairs = list(iterate_batches(zoo_model.test, BATCH, count))
        images, labels = [batch for batch, _ in pairs], torch.cat([labels for _, labels in pairs])
        reference = scores_of(zoo_model.model, images)
        fp32 = 100.0 * float((reference.argmax(dim=1) == labels).float().mean())
        print(
            f"\n{zoo_model.reference} on {zoo_model.dataset} test ({count} images, FP32 {fp32:.2f} %), "
            f"calibrated on {args.calibration} val images; activations and routing 8-bit, "
            f"{args.clip} clipping"
        )
        print(f"{'':<8}" + "".join(f"{measure:>{11 * len(VARIANTS)}}" for measure in MEASURES))
        print(f"{'weights':<8}" + "".join(f"{variant:>11}" for _ in MEASURES for variant in VARIANTS))
        for bits in args.bits:
            cells = []
            for options in VARIANTS.values():
                quantized = quantize_fx(
                    zoo_model.model, zoo_model.calibration, weight_bits=bits, clip=args.clip, **options
                )
                scores = scores_of(quantized, images)
                cells.append(
                    (
                        100.0 * float((scores.argmax(dim=1) == labels).float().mean()),
                        sqnr_db(reference, scores),
                        100.0 * float((scores.argmax(dim=1) == reference.argmax(dim=1)).float().mean()),
                    )
                )
            by_measure = [cell[measure] for measure in range(len(MEASURES)) for cell in cells]
            print(f"{bits:<8}" + "".join(f"{value:>11.2f}" for value in by_measure), flush=True)


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
