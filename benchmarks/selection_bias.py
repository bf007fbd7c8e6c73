"""Does the validation split overstate what a perturbation of the weights costs? Random noise on both splits.

    python benchmarks/selection_bias.py --model zoo:shallowcaps-fmnist --markdown docs/selection-bias.md
    python benchmarks/selection_bias.py --model zoo:deepcaps-fmnist --sigma 0.04 --seeds 4

The zoo keeps the checkpoint of each training run with the best validation accuracy (``capsq train``'s
``best.pt``), and every zoo model is more accurate on validation than on test (shallowcaps-fmnist 90.92 %
against 90.53 %). A checkpoint chosen for its validation accuracy is lucky on those images; any change of
its weights, quantization included, then loses more of them than of images it was not chosen on. An
allocation search decides on validation images, so it would reject allocations that hold on test.

This measures the effect without quantization's own structure: each weight tensor of the model is
multiplied element-wise by ``1 + sigma * N(0, 1)`` (an SQNR of ``-20 log10(sigma)`` dB, the range of the
error analysis' thresholds: 0.02 is 34 dB, 0.08 is 22 dB), for ``--seeds`` seeds per sigma, and the FP32
model with noise is compared with the FP32 model on the search's validation images (after the
calibration's, ``--validation-limit`` of them, as ``capsq run`` splits them) and on the test split.
``gap`` is the loss on validation minus the loss on test, per seed, then its mean and standard error: a
gap reliably above 0 means the validation split overstates the loss.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import warnings
from pathlib import Path

import torch
from allocation import code_version, publish_section
from tqdm import tqdm
from validation_slices import compare_on, default_slices, predictions_on

from capsnet_nncf_plugin.cli.arguments import positive_int
from capsnet_nncf_plugin.errors import ConfigError, run_reporting_user_errors
from capsnet_nncf_plugin.evaluation import accuracy_of
from capsnet_nncf_plugin.heap import keep_freed_memory
from capsnet_nncf_plugin.job import SearchConfig, load_inputs


def perturbed(model: torch.nn.Module, sigma: float, seed: int) -> torch.nn.Module:
    """A copy of ``model`` with every weight multiplied element-wise by ``1 + sigma * N(0, 1)``."""
    noisy = copy.deepcopy(model).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in noisy.named_parameters():
            if name.endswith("weight"):
                parameter.mul_(1 + sigma * torch.randn(parameter.shape, generator=generator))
    return noisy


def mean_and_error(values: list[float]) -> tuple[float, float]:
    """The mean and its standard error (0 for one value)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="zoo:NAME or a checkpoint")
    parser.add_argument("--sigma", type=float, action="append", help="relative noise (repeatable)")
    parser.add_argument("--seeds", type=positive_int, default=6, help="perturbations per sigma")
    parser.add_argument("--calibration", type=positive_int, default=512, help="calibration images")
    parser.add_argument("--validation-limit", type=positive_int, default=2000, help="the search's images")
    parser.add_argument("--markdown", type=Path, help="also write the table here (appended per model)")
    args = parser.parse_args(argv)
    sigmas = args.sigma or [0.02, 0.04, 0.08]
    if any(not 0 < sigma < 1 for sigma in sigmas):
        raise ConfigError(f"--sigma must lie in (0, 1), got {sigmas}: e.g. --sigma 0.04 (28 dB)")
    warnings.simplefilter("ignore")
    keep_freed_memory()  # FP32 capsule batches above glibc's mmap threshold: see heap.py
    inputs = load_inputs(SearchConfig(model=args.model, calibration_images=args.calibration))
    total = len(inputs.validation)
    _, (search_start, search_stop), *_ = default_slices(args.calibration, args.validation_limit, total)
    parts = {
        f"search's validation {search_start}-{search_stop - 1}": (
            inputs.validation,
            search_start,
            search_stop,
        ),
        "test": (inputs.test, 0, len(inputs.test)),
    }
    fp32 = {name: predictions_on(inputs.original, *part) for name, part in parts.items()}
    losses: dict[tuple[float, str], list[float]] = {}
    runs = [(sigma, seed) for sigma in sigmas for seed in range(args.seeds)]
    for sigma, seed in tqdm(runs, desc="perturbations", unit="model"):
        noisy = perturbed(inputs.original, sigma, seed)
        with torch.no_grad():
            for name, part in parts.items():
                predictions, labels = predictions_on(noisy, *part)
                losses.setdefault((sigma, name), []).append(
                    compare_on(name, fp32[name][0], predictions, labels).loss_pp
                )
    names = list(parts)
    fp32_accuracy = {name: accuracy_of(*fp32[name]) for name in names}
    lines = [
        f"## {args.model}",
        "",
        f"FP32: {', '.join(f'{name} {fp32_accuracy[name]:.2f} %' for name in names)}; {args.seeds} seeds per "
        f"sigma; commit {code_version() or 'unknown'}.",
        "",
        "| sigma | SQNR dB | "
        + " | ".join(f"loss pp, {name}" for name in names)
        + " | gap pp (search's - test) |",
        "|" + " ---: |" * (len(names) + 3),
    ]
    for sigma in sigmas:
        cells = [f"{sigma:g}", f"{-20 * math.log10(sigma):.0f}"]
        for name in names:
            mean, error = mean_and_error(losses[(sigma, name)])
            cells.append(f"{mean:.2f} ± {error:.2f}")
        gaps = [a - b for a, b in zip(losses[(sigma, names[0])], losses[(sigma, "test")], strict=True)]
        mean, error = mean_and_error(gaps)
        cells.append(f"{mean:+.2f} ± {error:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return publish_section("\n".join(lines) + "\n", args.markdown)


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
