"""The allocation report: a Markdown page with the per-layer bits table and the search figures, plus plots
(bits per layer; accuracy against weight memory for every method measured)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from capsnet_nncf_plugin.allocation.bit_allocation import BitAllocation
from capsnet_nncf_plugin.allocation.sensitivity import KINDS, ErrorAnalysis
from capsnet_nncf_plugin.atomic_file import write_text_atomically
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


def write_markdown(
    path: Path, title: str, allocation: BitAllocation, test: dict[str, Any], comparison: list[dict[str, Any]]
) -> None:
    info = allocation.info
    lines = [
        f"# {title}",
        "",
        f"Method **{allocation.method}**, tolerance {info.get('tolerance')} pp, clip `{info.get('clip')}`.",
        "",
        "| | |",
        "| --- | --- |",
        f"| FP32 test accuracy | {test['fp32_accuracy']:.2f} % |",
        f"| integer test accuracy | {test['accuracy']:.2f} % "
        f"({test['accuracy'] - test['fp32_accuracy']:+.2f} pp, {test['images']} images) |",
        f"| validation accuracy (search) | {info['validation_accuracy']:.2f} % "
        f"(FP32 {info['fp32_validation_accuracy']:.2f} %, {info['validation_images']} images) |",
        f"| weight memory reduction | {info['weight_reduction']:.2f}x |",
        f"| activation memory reduction | {info['activation_reduction']:.2f}x |",
        f"| routing memory reduction | {info['routing_reduction']:.2f}x |",
        f"| search | {info['search_seconds']:.0f} s, {info['evaluations']} evaluations "
        f"(error analysis {info['analysis_seconds']:.0f} s) |",
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


def plot_sensitivity(path: Path, analysis: ErrorAnalysis) -> None:
    """SQNR of each layer's output against bit-width, one panel per kind of tensor."""
    plt = pyplot()
    analysis.complete()
    kinds = [k for k in KINDS if any(k in kinds for kinds in analysis.errors.values())]
    figure, axes = plt.subplots(1, len(kinds), figsize=(4.5 * len(kinds), 3.8), squeeze=False)
    for axis, kind in zip(axes[0], kinds, strict=True):
        for name, by_kind in analysis.errors.items():
            if kind in by_kind:
                widths = sorted(by_kind[kind])
                axis.plot(
                    widths, [min(by_kind[kind][b]["sqnr_db"], 99.0) for b in widths], marker="o", label=name
                )
        axis.set_title(f"{kind} alone")
        axis.set_xlabel("bits")
        axis.set_ylabel("layer output SQNR (dB)")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    save_png(figure, path)
