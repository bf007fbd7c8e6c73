"""The allocation report: a Markdown page with the per-layer bits table and the search figures, plus plots
(bits per layer; accuracy against weight memory for every method measured)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from capsnet_nncf_plugin.allocation.evaluator import EvaluationCost
from capsnet_nncf_plugin.allocation.sensitivity import BLOCK_KINDS, KINDS, ErrorAnalysis
from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.core.bit_allocation import BitAllocation
from capsnet_nncf_plugin.figures import pyplot, save_png


def bits_table(allocation: BitAllocation) -> str:
    rows = ["| layer | weights | activation | routing (b / c / s / v) |", "| --- | ---: | ---: | --- |"]
    for name, bits in allocation.layers.items():
        routing = bits.routing
        rows.append(
            f"| {name} | {bits.weight} | {bits.activation} | "
            f"{routing.logits} / {routing.coupling} / {routing.pre_activation} / {routing.output} |"
        )
    return "\n".join(rows)


def settings_text(allocation: BitAllocation) -> str:
    """The allocation's quantization settings in words, for reports."""
    settings = allocation.resolved_settings()
    text = f"clip `{settings.clip}`, {settings.weight_rounding} weight rounding"
    return text + (", bias correction" if settings.bias_correction else "")


def recorded_cost(info: dict[str, Any]) -> EvaluationCost | None:
    """The search's evaluation cost as ``info`` records it; None where it records none in this form (an
    allocation from an older search, or a file edited by hand: the report leaves the line out)."""
    recorded = info.get("evaluation_cost")
    if not isinstance(recorded, dict) or set(recorded) != {field.name for field in fields(EvaluationCost)}:
        return None
    if not all(isinstance(value, (int, float)) for value in recorded.values()):
        return None
    return EvaluationCost(**recorded)


def write_markdown(
    path: Path,
    title: str,
    allocation: BitAllocation,
    test: dict[str, Any],
    comparison: list[dict[str, Any]],
    time_spent: str | None = None,
) -> None:
    """The job's report.md; ``time_spent``: where the job's time went (a ``PhaseTimer`` description)."""
    info = allocation.info
    cost = recorded_cost(info)
    lines = [
        f"# {title}",
        "",
        f"Method **{allocation.method}**, tolerance {info.get('tolerance')} pp, {settings_text(allocation)}.",
        "",
        "| | |",
        "| --- | --- |",
        f"| FP32 test accuracy | {test['fp32_accuracy']:.2f} % |",
        f"| integer test accuracy | {test['accuracy']:.2f} % "
        f"({test['accuracy'] - test['fp32_accuracy']:+.2f} pp, {test['images']} images"
        f"{', in ' + test['runtime'] if test.get('runtime') else ''}) |",
        f"| validation accuracy (search) | {info['validation_accuracy']:.2f} % "
        f"(FP32 {info['fp32_validation_accuracy']:.2f} %, {info['validation_images']} images) |",
        f"| weight memory reduction | {info['weight_reduction']:.2f}x |",
        f"| activation memory reduction | {info['activation_reduction']:.2f}x |",
        f"| routing memory reduction | {info['routing_reduction']:.2f}x |",
        f"| search | {info['search_seconds']:.0f} s, {info['evaluations']} evaluations "
        f"(error analysis {info['analysis_seconds']:.0f} s) |",
        *([f"| the search's evaluations | {cost.describe()} |"] if cost else []),
        *([f"| time of the whole job | {time_spent} |"] if time_spent else []),
        "",
        "## Bits per layer",
        "",
        bits_table(allocation),
        "",
        "![bits per layer](bits_per_layer.png)",
        "",
    ]
    if comparison:
        lines += [
            "## All methods",
            "",
            "| method | weight reduction | activation reduction | validation accuracy % | evaluations "
            "| seconds |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in comparison:
            lines.append(
                f"| {row['method']} | {row['weight_reduction']:.2f}x | {row['activation_reduction']:.2f}x | "
                f"{row['validation_accuracy']:.2f} | {row['evaluations']} | {row['search_seconds']:.0f} |"
            )
        lines += ["", "![accuracy against weight memory](accuracy_vs_memory.png)", ""]
    write_text_atomically(path, "\n".join(lines))


def plot_bits(path: Path, allocation: BitAllocation) -> None:
    plt = pyplot()
    names = list(allocation.layers)
    positions = range(len(names))
    figure, axes = plt.subplots(figsize=(max(6, 0.5 * len(names) + 2), 3.5))
    axes.bar([p - 0.2 for p in positions], [allocation.layers[n].weight for n in names], 0.4, label="weights")
    axes.bar(
        [p + 0.2 for p in positions],
        [allocation.layers[n].activation for n in names],
        0.4,
        label="activation",
    )
    axes.set_xticks(list(positions), names, rotation=45, ha="right")
    axes.set_ylabel("bits")
    axes.set_ylim(0, 9)
    axes.set_title(f"{allocation.method}: bits per layer")
    axes.legend()
    figure.tight_layout()
    save_png(figure, path)


def plot_accuracy_vs_memory(path: Path, comparison: list[dict[str, Any]]) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for row in comparison:
        axes.scatter(row["weight_reduction"], row["validation_accuracy"], s=40)
        axes.annotate(row["method"], (row["weight_reduction"], row["validation_accuracy"]), fontsize=8)
    axes.set_xlabel("weight memory reduction (x, FP32 / quantized)")
    axes.set_ylabel("validation accuracy (%)")
    axes.set_title("accuracy against weight memory")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    save_png(figure, path)


Curves = dict[str, dict[int, dict[str, float]]]  # label -> width -> entry


def _sqnr_panels(
    path: str | os.PathLike,
    panels: dict[str, Curves],
    ylabel: str,
    style: Callable[[str], dict[str, Any]] | None = None,
) -> None:
    """One panel per title, one line per unit: output SQNR against bit-width (infinite SQNR drawn at 99).

    ``style(label)`` gives a line's matplotlib keywords; by default each unit gets its own colour, from a
    20-colour map where the usual 10 would repeat.
    """
    plt = pyplot()
    labels = list(dict.fromkeys(label for curves in panels.values() for label in curves))
    colours = plt.get_cmap("tab20" if len(labels) > 10 else "tab10")
    figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for axis, (title, curves) in zip(axes[0], panels.items(), strict=True):
        for label, by_bits in curves.items():
            keywords = style(label) if style else {"color": colours(labels.index(label)), "marker": "o"}
            widths = sorted(by_bits)
            axis.plot(widths, [min(by_bits[b]["sqnr_db"], 99.0) for b in widths], label=label, **keywords)
        axis.set_title(title)
        axis.set_xlabel("bits")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
    # One legend, on the panel with the most lines: the others draw a subset of the same units.
    max(axes[0], key=lambda axis: len(axis.lines)).legend(fontsize=7, ncol=2 if len(labels) > 12 else 1)
    figure.tight_layout()
    save_png(figure, path)


def plot_sensitivity(path: str | os.PathLike, analysis: ErrorAnalysis) -> None:
    """SQNR of each layer's output against bit-width, one panel per kind of tensor."""
    analysis.complete()
    panels = {
        f"{kind} alone": {name: by_kind[kind] for name, by_kind in analysis.errors.items() if kind in by_kind}
        for kind in KINDS
        if any(kind in by_kind for by_kind in analysis.errors.values())
    }
    _sqnr_panels(path, panels, "layer output SQNR (dB)")


def plot_block_sensitivity(path: str | os.PathLike, analysis: ErrorAnalysis) -> None:
    """SQNR of each block's output against bit-width with all its layers quantized, per kind."""
    analysis.complete()
    bits = analysis.candidate_bits
    panels = {
        f"block {kind}": {
            block: {b: analysis.block_error(block, kind, b) for b in bits}
            for block in analysis.blocks()
            if kind in analysis.block_kinds(block)
        }
        for kind in BLOCK_KINDS
    }
    _sqnr_panels(
        path, {title: curves for title, curves in panels.items() if curves}, "block output SQNR (dB)"
    )


def plot_routing_sensitivity(path: str | os.PathLike, analysis: ErrorAnalysis) -> bool:
    """SQNR of each routing layer's output with one routing tensor of one iteration quantized, one panel
    per routing layer (lines: b[t], c[t], s[t], v[t]); ``False`` (no file) for a model without routing."""
    analysis.complete()
    symbols = {"logits": "b", "coupling": "c", "pre_activation": "s", "output": "v"}
    panels = {
        f"{name} routing": {
            # b[0] is the zero start; logit update t sets b[t + 1], as the quantization points name it.
            f"{symbols[tensor]}[{index + 1 if tensor == 'logits' else index}]": by_bits
            for tensor, by_index in by_tensor.items()
            for index, by_bits in by_index.items()
        }
        for name, by_tensor in analysis.iteration_errors.items()
    }
    if not panels:
        return False
    colours = {symbol: f"C{number}" for number, symbol in enumerate(symbols.values())}

    def style(label: str) -> dict[str, Any]:  # a colour per tensor, a marker and dash per iteration
        iteration = int(label[2:-1])
        return {
            "color": colours[label[0]],
            "marker": "os^D"[iteration % 4],
            "linestyle": ("-", "--", ":", "-.")[iteration % 4],
        }

    _sqnr_panels(path, panels, "routing layer output SQNR (dB)", style)
    return True
