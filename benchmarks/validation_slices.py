"""Does a search's allocation hold on images the search did not see? Its loss on slices of validation.

    python benchmarks/validation_slices.py --model zoo:deepcaps-mnist --allocation runs/a/allocation.json
    python benchmarks/validation_slices.py --model zoo:deepcaps-mnist --allocation A.json \\
        --allocation B.json --slice 512:2512 --slice 2512: --test

A search accepts an allocation on the validation images after the calibration's (``capsq run``: 2,000 of
them). Whether that acceptance carries over is a question about the other images: the rest of the
validation split, which no search step looked at, and the test split. For each allocation (an
``allocation.json`` of ``capsq quantize`` or ``capsq run``) the integer model is built as the job builds
it (``quantize_fx`` on the run's calibration images with the settings the allocation records, the native
squash and routing kernels: the torch integer model's predictions bit for bit) and compared with FP32 on
each slice: the loss in pp, the images FP32 gets right that it loses (``lost``, what the default
``losses`` criterion bounds) and those it gains.

Slices are ``START:STOP`` in validation image indices (``STOP`` may be left out: to the end). The default
slices are the calibration's images, the search's and the rest (from ``--calibration`` and
``--validation-limit``, as ``capsq run`` splits them). ``--test`` adds the test split.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from allocation import code_version

from capsnet_nncf_plugin.allocation.layers import model_layers
from capsnet_nncf_plugin.allocation.native_kernels import native_kernels
from capsnet_nncf_plugin.cli.arguments import positive_int
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.data.image_dataset import ImageDataset
from capsnet_nncf_plugin.errors import ConfigError, run_reporting_user_errors
from capsnet_nncf_plugin.evaluation import predict
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.job import SearchConfig, load_inputs


@dataclass(frozen=True)
class SliceResult:
    name: str
    images: int
    loss_pp: float  # FP32 accuracy minus the allocation's, percentage points
    lost: int  # FP32 right, the allocation wrong
    gained: int  # FP32 wrong, the allocation right


def compare_on(name: str, fp32: torch.Tensor, quantized: torch.Tensor, labels: torch.Tensor) -> SliceResult:
    """The allocation's predictions ``quantized`` against FP32's, both on the images of ``labels``."""
    fp32_right, quantized_right = fp32 == labels, quantized == labels
    loss = 100.0 * (fp32_right.float().mean() - quantized_right.float().mean()).item()
    lost = int((fp32_right & ~quantized_right).sum())
    gained = int((~fp32_right & quantized_right).sum())
    return SliceResult(name, len(labels), loss, lost, gained)


def parse_slice(text: str, total: int) -> tuple[int, int]:
    """``START:STOP`` (``STOP`` optional) as indices into ``total`` validation images, checked."""
    start_text, separator, stop_text = text.partition(":")
    try:
        start = int(start_text)
        stop = int(stop_text) if stop_text else total
    except ValueError:
        raise ConfigError(
            f"--slice {text!r}: expected START:STOP in image indices, e.g. 512:2512 or 2512:"
        ) from None
    if not separator or not 0 <= start < stop <= total:
        raise ConfigError(f"--slice {text!r}: expected 0 <= START < STOP <= {total} (the validation images)")
    return start, stop


def default_slices(calibration: int, search: int | None, total: int) -> list[tuple[int, int]]:
    """The calibration's images, the search's, and the rest when any are left."""
    search_stop = total if search is None else min(calibration + search, total)
    slices = [(0, calibration), (calibration, search_stop)]
    return slices + ([(search_stop, total)] if search_stop < total else [])


def table(results: dict[str, list[SliceResult]]) -> str:
    lines = ["| allocation | images | loss pp | lost | gained |", "| --- | --- | ---: | ---: | ---: |"]
    for allocation, rows in results.items():
        for r in rows:
            lines.append(
                f"| {allocation} | {r.name} ({r.images}) | {r.loss_pp:.2f} | {r.lost} | {r.gained} |"
            )
    return "\n".join(lines)


def predictions_on(
    model: Callable[[torch.Tensor], torch.Tensor], dataset: ImageDataset, start: int, stop: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classes ``model`` gives the images ``start`` to ``stop - 1`` of ``dataset``, and their labels."""
    images = dataset.after(start).subset(stop - start)
    return predict(model, images, progress=True, description=f"images {start}-{stop - 1}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="zoo:NAME or a checkpoint")
    parser.add_argument("--allocation", action="append", required=True, help="allocation.json (repeatable)")
    parser.add_argument("--slice", action="append", default=[], help="START:STOP of the validation images")
    parser.add_argument("--test", action="store_true", help="also the whole test split")
    parser.add_argument("--calibration", type=positive_int, default=512, help="calibration images")
    parser.add_argument("--validation-limit", type=positive_int, default=2000, help="the search's images")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # torch.ao's deprecation notices, as in the other benchmarks
    allocations = {path: BitAllocation.load(path) for path in args.allocation}  # one-line errors
    inputs = load_inputs(SearchConfig(model=args.model, calibration_images=args.calibration))
    layers = model_layers(inputs.model)
    for allocation in allocations.values():
        allocation.check_layers(layers)  # an allocation of another model is refused, not half applied
    total = len(inputs.validation)
    slices = [parse_slice(text, total) for text in args.slice] or default_slices(
        args.calibration, args.validation_limit, total
    )
    parts = [(f"validation {a}-{b - 1}", inputs.validation, a, b) for a, b in slices]
    if args.test:
        parts.append(("test", inputs.test, 0, len(inputs.test)))
    # FP32 is the model as given, as the job's FP32 test pass runs it (inputs.model may be its capture).
    fp32 = {name: predictions_on(inputs.original, data, a, b) for name, data, a, b in parts}
    results: dict[str, list[SliceResult]] = {}
    for path, allocation in allocations.items():
        # With the settings the allocation records (clip, weight rounding), as its search measured it.
        quantized = quantize_fx(inputs.model, inputs.calibration, allocation=allocation)
        with native_kernels():
            rows = []
            for name, data, a, b in parts:
                predictions, labels = predictions_on(quantized, data, a, b)
                rows.append(compare_on(name, fp32[name][0], predictions, labels))
        results[path] = rows
    print(f"model {args.model}, calibration {args.calibration} images, commit {code_version() or 'unknown'}")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
