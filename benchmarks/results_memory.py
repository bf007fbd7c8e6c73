"""Re-render the memory ratios of every row of docs/results*.json from the row's stored allocation.

    python benchmarks/results_memory.py                 # every row of every record
    python benchmarks/results_memory.py --record docs/results.json

Each row keeps the allocation its search found (bits per layer and the quantization settings). This script
quantizes the row's zoo model with that allocation (FX flow, on one batch of validation images: memory
depends on widths and tensor sizes, not on calibration values), recomputes the weight and activation
memory reductions (docs/memory.md) and prints them beside the stored ones. It exits 1 if any differs by
more than 0.005 (the tables print two decimals): a change of the code that altered what an allocation
quantizes to would show here.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from allocation import code_version

from capsnet_nncf_plugin.allocation import memory_report
from capsnet_nncf_plugin.core import BitAllocation
from capsnet_nncf_plugin.data import load_dataset
from capsnet_nncf_plugin.errors import run_reporting_user_errors
from capsnet_nncf_plugin.evaluation import iterate_batches
from capsnet_nncf_plugin.fx import quantization_points, quantize_fx
from capsnet_nncf_plugin.models import open_checkpoint

DOCS = Path(__file__).resolve().parents[1] / "docs"
TOLERANCE = 0.005


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--record", action="append", help="a results JSON record (default: every one)")
    args = parser.parse_args()
    records = [Path(path) for path in args.record] if args.record else sorted(DOCS.glob("results*.json"))
    warnings.simplefilter("ignore")
    print(f"commit {code_version() or 'unknown'}")
    print(f"{'record':<22}{'model':<24}{'method':<22}{'weights x':>22}{'activations x':>24}")
    models, differing, rows = {}, 0, 0
    for record in records:
        for reference, entry in sorted(json.loads(record.read_text())["models"].items()):
            if reference not in models:
                checkpoint = open_checkpoint(reference)
                checkpoint.model.without_decoder()
                validation = load_dataset(checkpoint.metadata["dataset"], "val")
                batch = next(iterate_batches(validation, 8))[0]
                models[reference] = (checkpoint.model.eval(), batch)
            model, batch = models[reference]
            for method, row in sorted(entry["methods"].items()):
                allocation = BitAllocation.from_dict(row["allocation"])
                quantized = quantize_fx(model, [batch], allocation=allocation)
                memory = memory_report(quantization_points(quantized), model)
                pairs = (
                    (row["weight_reduction"], memory.weight_reduction),
                    (row["activation_reduction"], memory.activation_reduction),
                )
                same = all(abs(stored - now) <= TOLERANCE for stored, now in pairs)
                differing += not same
                rows += 1
                cells = [f"{stored:.2f} -> {now:.2f}" for stored, now in pairs]
                mark = "" if same else "  DIFFERS"
                print(
                    f"{record.name:<22}{reference:<24}{method:<22}{cells[0]:>22}{cells[1]:>24}{mark}",
                    flush=True,
                )
    print(f"{rows} rows re-rendered, {differing} differ")
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
