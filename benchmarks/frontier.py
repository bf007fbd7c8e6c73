"""A model's measured frontier: weight against activation memory reduction at <= TOLERANCE pp test loss.

    python benchmarks/frontier.py --model zoo:deepcaps-fmnist --markdown docs/frontier.md
    python benchmarks/frontier.py --model zoo:deepcaps-mnist --weight-thresholds 15,21,27 --limit 2000

Where one default does not reach a target (issue 35: >= 8x weights and >= 4.5x activations at <= 0.10 pp),
this says how far the quantizers themselves reach, measured. Every point of a grid of error-guided's
thresholds: the weights of every layer at the smallest width whose SQNR in the error analysis reaches
``T_w`` dB (at most 8 bits), the activations at the smallest reaching ``T_a`` dB (at most 16 bits: capped
at 8, shallowcaps-fmnist lost 0.84 to 0.94 pp at every point measured in full, where error-guided gives its
primary capsules 12), the routing tensors at 8 bits (``--routing-threshold DB``: each tensor of each
iteration at the smallest width reaching DB, error-guided's routing granularity). Each point's integer
model is measured on the test split (native squash and routing kernels: the torch integer model's
predictions bit for bit).

It is an oracle on the test set: it shows what the integer format and the clipping can reach, not what a
search on validation images finds (``capsq run`` does that). The two points that bound the target, the best
weight reduction among points with >= ``--activation-target`` activations and the best activation reduction
among points with >= ``--weight-target`` weights (both within the tolerance), are exported to QDQ ONNX and
run in onnxruntime as well.

With ``--markdown PATH`` the points are kept in ``PATH`` with the suffix ``.json`` (one entry per model and
settings), the Markdown is rendered from it, and each model's plot is written beside it as
``PATH-stem-MODEL.png``. A later run on the same model, settings, test images and targets adds its points
to the entry, replacing those at the same thresholds, so a grid can be measured a part at a time; anything
else replaces the entry. Every point records the commit that measured it.

With ``--validation-images N`` each point measured in full is also run on the first N validation images
after the calibration's, the images a search decides on (``capsq run`` uses 2,000): its loss there, and
the share of the images FP32 classifies correctly that it loses (what the default ``losses`` criterion
also bounds). The gap between the two splits is what a search on validation images cannot see.

A point whose test loss surely exceeds ``--stop-beyond`` pp (1.0 by default) stops early, the images running
smallest FP32 margin first, so that the failing corner of a grid costs a few batches per point rather than
the whole test split; such a point is shown as "stopped".
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

from allocation import code_version
from routing_thresholds import thresholds_list

from capsnet_nncf_plugin.allocation.evaluator import AccuracyEvaluator
from capsnet_nncf_plugin.allocation.layers import quantizable_layers
from capsnet_nncf_plugin.allocation.memory import memory_report
from capsnet_nncf_plugin.allocation.methods.context import START_BITS, WIDEST_BITS, SearchContext
from capsnet_nncf_plugin.allocation.methods.error_guided import (
    FIRST_ROUTING_THRESHOLD_DB,
    at_threshold,
    routing_at_threshold,
)
from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.cli.options import add_options, config_from_args
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.errors import run_reporting_user_errors
from capsnet_nncf_plugin.figures import pyplot, save_png
from capsnet_nncf_plugin.job import SearchConfig, analyze, export_and_compare, load_inputs
from capsnet_nncf_plugin.quantized import quantization_points


def routing_threshold(text: str) -> float | None:
    """``--routing-threshold``: dB, or 'none'."""
    return None if text.strip().lower() == "none" else float(text)


@dataclasses.dataclass
class Point:
    weight_threshold: float
    activation_threshold: float
    weight_reduction: float
    activation_reduction: float
    routing_reduction: float
    accuracy: float | None  # None when stopped early
    loss: float | None  # test pp; None when stopped early: then it surely exceeds ``stopped_beyond``
    onnxruntime: float | None = None  # measured for the bounding points only
    identical: float | None = None  # percent of outputs onnxruntime = torch bit for bit
    stopped_beyond: float | None = None
    validation_loss: float | None = None  # pp on the first ``validation_images`` (--validation-images)
    validation_lost: float | None = None  # pp of those images: FP32 right, the point wrong
    validation_images: int | None = None
    validation_from: int | None = None  # the first of them: how many validation images come before
    code: str | None = None  # the commit that measured the point

    def within(self, tolerance: float) -> bool:
        return self.loss is not None and self.loss <= tolerance + 1e-9


def point_allocation(
    context: SearchContext, weight_db: float, activation_db: float, routing_db: float | None
) -> BitAllocation:
    """The grid point: error-guided's widths at the two thresholds; the routing tensors at ``routing_db``,
    or at 8 bits (None)."""
    allocation = context.uniform()
    allocation = at_threshold(context, allocation, "weight", weight_db, START_BITS)
    # Activations may need more than 8 bits where the error analysis says so (error-guided widens them too).
    allocation = at_threshold(context, allocation, "activation", activation_db, WIDEST_BITS)
    if routing_db is None:
        return allocation
    return routing_at_threshold(context.layers, context.analysis, allocation, routing_db)


def pareto(points: list[Point], tolerance: float) -> list[Point]:
    """The points within ``tolerance`` that no other such point beats in both reductions."""
    within = [p for p in points if p.within(tolerance)]
    return sorted(
        (
            p
            for p in within
            if not any(
                q.weight_reduction >= p.weight_reduction
                and q.activation_reduction >= p.activation_reduction
                and (q.weight_reduction, q.activation_reduction)
                != (p.weight_reduction, p.activation_reduction)
                for q in within
            )
        ),
        key=lambda p: p.weight_reduction,
    )


def bounding_points(
    points: list[Point], tolerance: float, weight_target: float, activation_target: float
) -> dict[str, Point | None]:
    """The best weight reduction at >= ``activation_target`` activations and the best activation reduction
    at >= ``weight_target`` weights, among points within ``tolerance``; None where no point qualifies."""
    within = [p for p in points if p.within(tolerance)]
    by_weight = [p for p in within if p.activation_reduction >= activation_target]
    by_activation = [p for p in within if p.weight_reduction >= weight_target]
    return {
        "best_weights": max(by_weight, key=lambda p: p.weight_reduction, default=None),
        "best_activations": max(by_activation, key=lambda p: p.activation_reduction, default=None),
    }


def plot(entry: dict[str, Any], path: Path) -> None:
    """Weight against activation reduction of every point, those within the tolerance filled."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6.4, 4.8))
    tolerance = entry["tolerance"]
    points = entry_points(entry)
    for within, style in ((True, {"marker": "o"}), (False, {"marker": "x", "alpha": 0.5})):
        chosen = [p for p in points if p.within(tolerance) == within]
        label = f"test loss <= {tolerance:.2f} pp" if within else f"test loss > {tolerance:.2f} pp"
        axes.scatter(
            [p.weight_reduction for p in chosen],
            [p.activation_reduction for p in chosen],
            label=label,
            **style,
        )
    front = pareto(points, tolerance)
    axes.plot([p.weight_reduction for p in front], [p.activation_reduction for p in front], "-", lw=1)
    axes.axvline(entry["weight_target"], ls="--", lw=0.8, color="grey")
    axes.axhline(entry["activation_target"], ls="--", lw=0.8, color="grey")
    axes.set_xlabel("weight memory reduction (x)")
    axes.set_ylabel("activation memory reduction (x)")
    axes.set_title(f"{entry['model']}: {entry['settings']}")
    axes.legend()
    save_png(figure, path)


def table_row(p: Point) -> str:
    """``p``'s row of the table: thresholds, reductions, test accuracy and loss ("stopped" if stopped), then
    its validation loss and losses ("-" where not measured)."""
    measured = f"stopped | > {p.stopped_beyond:.2f}" if p.loss is None else f"{p.accuracy:.2f} | {p.loss:.2f}"
    validation = (
        "- | -" if p.validation_loss is None else f"{p.validation_loss:.2f} | {p.validation_lost:.2f}"
    )
    return (
        f"| {p.weight_threshold:.0f} | {p.activation_threshold:.0f} | {p.weight_reduction:.2f} | "
        f"{p.activation_reduction:.2f} | {p.routing_reduction:.2f} | {measured} | {validation} | "
        f"{(p.code or '-')[:12]} |"
    )


TABLE_HEADER = (
    "| T_w dB | T_a dB | weights x | activations x | routing x | test % | loss pp "
    "| val loss pp | val lost pp | commit |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
)


def describe(point: Point | None) -> str:
    if point is None:
        return "none within the tolerance"
    ort = (
        ""
        if point.onnxruntime is None
        else f", onnxruntime {point.onnxruntime:.2f} % ({point.identical:.2f} % identical)"
    )
    return (
        f"{point.weight_reduction:.2f}x / {point.activation_reduction:.2f}x at {point.loss:.2f} pp "
        f"(T_w {point.weight_threshold:.0f} dB, T_a {point.activation_threshold:.0f} dB{ort})"
    )


def entry_points(entry: dict[str, Any]) -> list[Point]:
    """The entry's points; those kept before points recorded their commit get the entry's."""
    return [Point(**{"code": entry.get("code"), **p}) for p in entry["points"]]


def merged_points(old: dict[str, Any] | None, new: dict[str, Any], points: list[Point]) -> list[Point]:
    """``points`` added to the ``old`` entry's where both measured the same thing (model and settings by the
    entry's key; FP32 accuracy, test images, tolerance and targets here), a point at the same thresholds
    replaced; else ``points`` alone. Sorted by thresholds."""
    same = ("fp32", "test_images", "tolerance", "weight_target", "activation_target")
    kept = {}
    if old is not None and all(old.get(name) == new[name] for name in same):
        kept = {(p.weight_threshold, p.activation_threshold): p for p in entry_points(old)}
    kept.update({(p.weight_threshold, p.activation_threshold): p for p in points})
    return [kept[key] for key in sorted(kept)]


def commits_sentence(points: list[Point]) -> str:
    codes = sorted({(p.code or "unknown")[:12] for p in points})
    return ("commit " if len(codes) == 1 else "commits ") + ", ".join(codes)


def validation_sentence(points: list[Point]) -> str:
    """Which validation images the entry's points were also run on, if any."""
    runs = sorted({(p.validation_images, p.validation_from or 0) for p in points if p.validation_images})
    if not runs:
        return ""
    described = [f"{count} images from validation image {first}" for count, first in runs]
    return f" Validation: {'; '.join(described)}."


def markdown(record: dict[str, Any], command: str) -> str:
    lines = [
        "# Measured frontiers",
        "",
        "Regenerated by `" + command + "` (one model per run; see its docstring).",
        "Each point: error-guided's widths at a weight threshold `T_w` and an activation threshold `T_a`",
        "(dB of SQNR in the error analysis), measured on the whole test split by the integer model (each row",
        "names the commit that measured it). Points",
        "within the tolerance that no other beats in both reductions are the frontier (marked *). Where",
        "measured (`--validation-images N`), `val loss pp` is the point's loss on the first N validation",
        "images after the calibration's, the ones a search decides on (each entry names the first; runs",
        "before commit 4f99c2a started at image 0, the 512 calibration images included), and `val lost pp`",
        "the share of them it loses that FP32 gets right (the default `losses` criterion holds both within",
        "the tolerance).",
        "",
    ]
    for key in sorted(record):
        entry = record[key]
        points = entry_points(entry)
        front = {(p.weight_threshold, p.activation_threshold) for p in pareto(points, entry["tolerance"])}
        bounds = {name: (Point(**p) if p else None) for name, p in entry["bounds"].items()}
        lines += [
            f"## {entry['model']} ({entry['settings']})",
            "",
            f"FP32 {entry['fp32']:.2f} % on {entry['test_images']} test images; "
            f"{commits_sentence(points)}, {entry['measured']}. Plot: `{entry['plot']}`."
            + validation_sentence(points),
            "",
            f"- best weight reduction at >= {entry['activation_target']}x activations: "
            + describe(bounds["best_weights"]),
            f"- best activation reduction at >= {entry['weight_target']}x weights: "
            + describe(bounds["best_activations"]),
            "",
            TABLE_HEADER[0] + " frontier |",
            TABLE_HEADER[1] + " --- |",
        ]
        for p in sorted(points, key=lambda p: (p.weight_threshold, p.activation_threshold)):
            mark = "*" if (p.weight_threshold, p.activation_threshold) in front else ""
            lines.append(f"{table_row(p)} {mark} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_options(
        parser,
        (
            "model",
            "dataset",
            "data_root",
            "calibration_images",
            "test_limit",
            "clip",
            "weight_rounding",
            "analysis_cache",
        ),
        SearchConfig,
    )
    parser.add_argument("--weight-thresholds", type=thresholds_list, default="15,18,21,24,27")
    parser.add_argument("--activation-thresholds", type=thresholds_list, default="18,21,24,27,30")
    parser.add_argument(
        "--routing-threshold",
        type=routing_threshold,
        default=None,
        help="dB: the routing tensors of every iteration at the smallest width reaching it (error-guided's "
        f"first is {FIRST_ROUTING_THRESHOLD_DB:g}); 'none' (the default) keeps them at 8 bits, so that a "
        "point's loss is its weights' and activations'",
    )
    parser.add_argument("--tolerance", type=float, default=0.1, help="test loss, pp")
    parser.add_argument(
        "--stop-beyond",
        type=float,
        default=1.0,
        help="test loss (pp) beyond which a point stops early (its images run smallest FP32 margin first), "
        "shown as '> STOP_BEYOND'; 'inf' measures every point on every image",
    )
    parser.add_argument("--weight-target", type=float, default=8.0)
    parser.add_argument("--activation-target", type=float, default=4.5)
    parser.add_argument(
        "--validation-images",
        type=int,
        default=0,
        help="also run every point measured in full on the first N validation images after the calibration's "
        "(the search's images; 0: not at all)",
    )
    parser.add_argument("--markdown", default=None, help="keep the points in PATH.json and render PATH")
    args = parser.parse_args()
    config = config_from_args(SearchConfig, args)
    warnings.simplefilter("ignore")
    code = code_version() or "unknown"
    inputs = load_inputs(config)
    model, test = inputs.model, inputs.test
    analysis = analyze(inputs, config, progress=True)
    # The accuracy criterion: a point stops early only once its test accuracy surely drops too far.
    evaluator = AccuracyEvaluator(
        model,
        inputs.calibration,
        test,
        settings=config.settings(),
        limit=config.test_limit,
        criterion="accuracy",
    )
    stop_beyond = None if args.stop_beyond == float("inf") else max(args.stop_beyond, args.tolerance)
    context = SearchContext(quantizable_layers(model), analysis, evaluator, args.tolerance)
    fp32 = evaluator.fp32_accuracy
    print(f"{config.model}: FP32 {fp32:.2f} % on {len(evaluator.labels)} test images; commit {code}")
    validation = None
    if args.validation_images > 0:
        validation = AccuracyEvaluator(
            model,
            inputs.calibration,
            inputs.search,
            settings=config.settings(),
            limit=args.validation_images,
            criterion="accuracy",
        )
        print(f"FP32 {validation.fp32_accuracy:.2f} % on {len(validation.labels)} validation images")
    print("\n".join(TABLE_HEADER))
    points, allocations = [], {}
    for weight_db in args.weight_thresholds:
        for activation_db in args.activation_thresholds:
            allocation = point_allocation(context, weight_db, activation_db, args.routing_threshold)
            measured = evaluator.measure(allocation, stop_beyond)
            memory = memory_report(quantization_points(evaluator.quantized_model(allocation)), model)
            point = Point(
                weight_db,
                activation_db,
                memory.weight_reduction,
                memory.activation_reduction,
                memory.routing_reduction,
                measured.accuracy if measured.complete else None,
                fp32 - measured.accuracy if measured.complete else None,
                stopped_beyond=None if measured.complete else stop_beyond,
                code=code,
            )
            if validation is not None and measured.complete:
                on_validation = validation.measure(allocation)
                point.validation_loss = validation.fp32_accuracy - on_validation.accuracy
                point.validation_lost = on_validation.lost
                point.validation_images = len(validation.labels)
                point.validation_from = len(inputs.validation) - len(inputs.search)
            points.append(point)
            allocations[(weight_db, activation_db)] = allocation
            print(table_row(point), flush=True)
    threshold = args.routing_threshold
    routing, routing_tag = (
        ("8-bit", "8bit") if threshold is None else (f"{threshold:g} dB", f"{threshold:g}dB")
    )
    entry = {
        "model": config.model,
        "settings": f"clip {config.clip}, {config.weight_rounding} weight rounding, routing {routing}",
        "fp32": fp32,
        "test_images": len(evaluator.labels),
        "tolerance": args.tolerance,
        "weight_target": args.weight_target,
        "activation_target": args.activation_target,
        "measured": datetime.date.today().isoformat(),
    }
    key = f"{config.model} {entry['settings']}"
    if args.markdown:
        path = Path(args.markdown)
        record_path = path.with_suffix(".json")
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
        stem = config.model.replace(":", "-").replace("/", "_")
        plot_path = path.with_name(
            f"{path.stem}-{stem}-{config.clip}-{config.weight_rounding}-routing{routing_tag}.png"
        )
        points = merged_points(record.get(key), entry, points)
    bounds = bounding_points(points, args.tolerance, args.weight_target, args.activation_target)
    for point in {id(p): p for p in bounds.values() if p is not None and p.onnxruntime is None}.values():
        thresholds = (point.weight_threshold, point.activation_threshold)
        if thresholds not in allocations:  # kept from an earlier run: the same analysis gives its widths
            allocations[thresholds] = point_allocation(context, *thresholds, args.routing_threshold)
        quantized = evaluator.quantize(allocations[thresholds])
        with tempfile.TemporaryDirectory() as folder:
            _, agreement, _ = export_and_compare(
                quantized, inputs.example, test, Path(folder) / "model.onnx", config.test_limit
            )
        # The torch integer model run plainly, against the native kernels' measurement of the same point.
        if abs(agreement.reference_accuracy - point.accuracy) > 1e-9:
            raise RuntimeError(
                f"T_w {thresholds[0]:g} / T_a {thresholds[1]:g}: the fast evaluation (commit {point.code}) "
                f"measured {point.accuracy} %, the torch integer model {agreement.reference_accuracy} %"
            )
        point.onnxruntime, point.identical = agreement.candidate_accuracy, agreement.identical_outputs
    for name, point in bounds.items():
        print(f"{name}: {describe(point)}")
    if args.markdown:
        entry.update(
            code=code,
            plot=plot_path.name,
            points=[dataclasses.asdict(p) for p in points],
            bounds={name: (dataclasses.asdict(p) if p else None) for name, p in bounds.items()},
        )
        record[key] = entry
        plot(entry, plot_path)
        write_text_atomically(record_path, json.dumps(record, indent=1) + "\n")
        write_text_atomically(
            path, markdown(record, "python benchmarks/frontier.py --model M --markdown " + args.markdown)
        )
        print(f"wrote {path}, {record_path} and {plot_path}")


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
