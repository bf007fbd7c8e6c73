"""Progressive bit-width allocation on zoo models: every method against uniform 8-bit and Q-CapsNets.

    python benchmarks/allocation.py                                  # every zoo model, tolerance 0.1 pp
    python benchmarks/allocation.py --model runs/x/best.pt --validation-limit 2000 --limit 2000
    python benchmarks/allocation.py --markdown docs/results.md      # regenerates the reproduction table
    python benchmarks/allocation.py --model zoo:deepcaps-mnist --markdown docs/results.md   # adds one model

For each model: one error analysis shared by the methods, then each method's search on the validation
split; the integer model of each allocation is measured on the test split in torch and, exported to QDQ
ONNX, in onnxruntime with the custom-op library. Columns: weight and activation memory reduction against
FP32, test accuracy in torch and onnxruntime, accuracy loss (pp), search time (s, error analysis excluded)
and the number of accuracy evaluations. The last lines say which approaches reach the Q-CapsNets
baseline's weight reduction at the same tolerance.

With ``--markdown PATH`` every finished (model, method) row is also kept in ``PATH`` with the suffix
``.json``, written atomically as soon as it is measured, and the Markdown is rendered from that record.
Rows of models or methods this run does not touch stay, so the DeepCaps searches (hours on 2 cores) can
run model by model and an interrupted run resumes where it stopped: a row already recorded under the same
settings is not measured again (``--fresh`` re-measures it). A record made with other settings is refused.
Runs on different models may share one record at once (say one per core, ``OMP_NUM_THREADS=1`` each):
each row is added under a lock after reading back the rows the others wrote.
``--analysis-cache DIR`` keeps the error analysis of each model there too (see ``analyze_errors``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import capsnet_nncf_plugin
from capsnet_nncf_plugin.allocation import available_methods
from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.cli.options import add_options, config_from_args
from capsnet_nncf_plugin.errors import ExportError, run_reporting_user_errors
from capsnet_nncf_plugin.evaluation import evaluate_accuracy
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.heap import keep_freed_memory
from capsnet_nncf_plugin.job import SearchConfig, analyze, export_and_compare, load_inputs, search
from capsnet_nncf_plugin.models import available_pretrained

PROGRESSIVE = ("progressive-descent", "error-guided", "block-routing")
#: The options a record's rows share: a row measured under others does not belong in the same table
#: (record key -> the search option it is).
SETTINGS = {
    "tolerance": "tolerance",
    "calibration": "calibration_images",
    "validation_limit": "validation_limit",
    "criterion": "criterion",
    "limit": "test_limit",
    "bias_correction": "bias_correction",
    "clip": "clip",
    "weight_rounding": "weight_rounding",
    "weight_reduction": "weight_reduction",
}
#: Settings newer than some records, with the value those records were measured under.
SETTINGS_ADDED_LATER = {"clip": "hardware", "weight_rounding": "nearest", "weight_reduction": None}
#: What a row keeps of an allocation's ``info``, beside its test accuracies.
ROW_KEYS = ("weight_reduction", "activation_reduction", "search_seconds", "evaluations")

PUBLISHED = """## Published figures (for comparison)

| work | model / data | weights x | activations x | accuracy loss |
| --- | --- | ---: | ---: | ---: |
| Raji et al., IEEE Access 13 (2025), best approach | DeepCaps / CIFAR-10 | 7.02 | 3.74 | 0.09 pp |
| Q-CapsNets, Marchisio et al., DAC 2020 | DeepCaps / CIFAR-10 | 6.2 | - | 0.15 pp |

The zoo has no CIFAR-10 model (the dataset is in no registry reachable here); the rows above are the
papers' own numbers, beside ours on MNIST and Fashion-MNIST. Memory definitions: docs/memory.md. Every
table of this kind and its command: docs/benchmarks.md. What the integer format reaches at <= 0.10 pp
test loss where no search here reaches both 8x weights and 4.5x activations (a measured frontier of
weight against activation reduction, each point on the whole test set): docs/frontier.md.
"""


def integer_accuracies(quantized, inputs, limit, label) -> tuple[float, float]:
    """Test accuracy of the integer model in torch (squash and routing on the native kernels: the torch
    reference's integers, ten times faster on DeepCaps) and, exported to QDQ ONNX, in onnxruntime."""
    with tempfile.TemporaryDirectory() as folder:
        _, agreement, _ = export_and_compare(
            quantized,
            inputs.example,
            inputs.test,
            Path(folder) / "model.onnx",
            limit,
            True,
            label,
            native=True,
        )
    return agreement.reference_accuracy, agreement.candidate_accuracy


def publish_section(text: str, markdown: Path | None) -> int:
    """Print a section of Markdown and append it to ``markdown`` if given (a blank line after what the file
    holds, atomically); the exit status of a script that ends there."""
    print(text)
    if markdown is not None:
        previous = markdown.read_text() if markdown.exists() else ""
        write_text_atomically(markdown, previous + ("\n" if previous else "") + text)
    return 0


def code_version() -> str | None:
    """The git commit of the package this run imported, ``+changes`` when its tracked sources or this script
    differ from it (a row measured so cannot be reproduced from the commit alone); None outside git.

    Taken once, before any search: a row is attributed to the code that measured it, not to a commit made
    while it ran.
    """
    source = Path(capsnet_nncf_plugin.__file__).resolve().parent

    def git(*arguments: str) -> str:
        command = ["git", "-C", str(source), *arguments]
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        checkout = Path(git("rev-parse", "--show-toplevel"))
        script = Path(__file__).resolve()
        paths = [str(source), *([str(script)] if script.is_relative_to(checkout) else [])]
        changed = git("status", "--porcelain", "--untracked-files=no", "--", *paths)
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+changes" if changed else commit


def settings_of(config: SearchConfig) -> dict[str, Any]:
    return {key: getattr(config, option) for key, option in SETTINGS.items()}


def file_stem(reference: str) -> str:
    """``zoo:NAME`` or a checkpoint path as a file name."""
    return reference.replace(":", "-").replace("/", "_")


def analysis_cache_name(reference: str, config: SearchConfig) -> str:
    """The error-analysis cache file of a model under the settings that change the analysis.

    Runs of one model under other settings (one per core) would otherwise replace each other's file.
    """
    corrected = "-bias-corrected" if config.bias_correction else ""
    return (
        f"{file_stem(reference)}-calibration{config.calibration_images}-clip-{config.clip}-"
        f"{config.weight_rounding}{corrected}.json"
    )


def stored_settings(record: dict[str, Any]) -> dict[str, Any] | None:
    """A record's settings, with the value of each setting it predates filled in."""
    settings = record.get("settings")
    return None if settings is None else {**SETTINGS_ADDED_LATER, **settings}


def regenerating_command(settings: dict[str, Any], defaults: dict[str, Any], markdown_path: str) -> str:
    """The command that remeasures every zoo model under ``settings`` (options at ``defaults`` left out)."""
    options = []
    for name in SETTINGS:
        value = settings[name]
        if value is False or defaults[name] == value:
            continue
        flag = "--" + name.replace("_", "-")
        if value is None:  # every image (a count), or no weights budget where the default has one
            options.append(f"{flag} {'none' if name == 'weight_reduction' else 'all'}")
        else:
            options.append(flag if value is True else f"{flag} {value}")
    return " ".join(["python benchmarks/allocation.py", *options, "--markdown", markdown_path])


class Record:
    """The rows measured so far under one set of settings, kept as JSON beside the Markdown table."""

    def __init__(
        self,
        table: Path,
        settings: dict[str, Any],
        fresh: bool,
        command: str,
        code: str | None = None,
        unrecorded: bool = False,
    ) -> None:
        self.table, self.command, self.fresh, self.code = table, command, fresh, code
        self.unrecorded = unrecorded
        self.path = path = table.with_suffix(".json")
        # What this run measured: a --fresh run re-measures the rest even after reading them back.
        self.measured: set[tuple[str, str]] = set()
        settings = {**SETTINGS_ADDED_LATER, **settings}
        self.data: dict[str, Any] = {"settings": settings, "models": {}}
        if path.exists() and not fresh:
            stored = json.loads(path.read_text())
            if stored_settings(stored) != settings:
                raise ValueError(
                    f"{path} holds rows measured with {stored_settings(stored)}, not {settings}; "
                    "rerun with those settings to extend it, pass --fresh to start it over, "
                    "or give --markdown another path"
                )
            self.data = {**stored, "settings": settings}

    def model(self, reference: str) -> dict[str, Any]:
        return self.data["models"].setdefault(reference, {"methods": {}})

    def fp32(self, reference: str) -> float | None:
        return self.data["models"].get(reference, {}).get("fp32")

    def missing(self, reference: str, methods: list[str]) -> list[str]:
        if self.fresh:
            return [method for method in methods if (reference, method) not in self.measured]
        recorded = self.data["models"].get(reference, {}).get("methods", {})
        if self.unrecorded:
            # A row whose code is not recorded cannot be reproduced: measure it again.
            recorded = {method: row for method, row in recorded.items() if row.get("code")}
        return [method for method in methods if method not in recorded]

    def _read_back_rows_of_other_runs(self) -> None:
        stored = json.loads(self.path.read_text()) if self.path.exists() else {}
        if stored_settings(stored) != self.data["settings"]:
            return  # nothing yet, or a --fresh run over other settings: its rows are not ours to keep
        for reference, entry in stored["models"].items():
            merged = self.model(reference)
            merged.setdefault("fp32", entry.get("fp32"))
            # A row this run only read back may have been measured again by another run since: the file's
            # copy is the newer one. Only the rows this run measured itself are kept over the file's.
            ours = {
                method: row
                for method, row in merged["methods"].items()
                if (reference, method) in self.measured
            }
            merged["methods"] = {**merged["methods"], **entry.get("methods", {}), **ours}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Runs on other models may share the record (one per core): under a lock, the rows they wrote since
        # this run read the file are read back before this run writes, so none is lost, and the table is
        # rendered before the lock is let go (by the caller), so the last one written has every row. The
        # lock is on the folder: the file itself is replaced by each write, and a lock file would litter
        # docs/.
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            self._read_back_rows_of_other_runs()
            yield
        finally:
            os.close(folder)  # releases the lock

    def add(self, reference: str, fp32: float, method: str, row: dict[str, Any]) -> None:
        with self._locked():
            entry = self.model(reference)
            entry["fp32"] = fp32
            code = self.code or "unknown"
            entry["methods"][method] = {
                **row,
                "measured": datetime.date.today().isoformat(),
                "code": code,
                **_before(entry["methods"].get(method), code),
            }
            self.measured.add((reference, method))
            write_text_atomically(self.path, json.dumps(self.data, indent=2) + "\n")
            self._write_table()

    def render(self) -> None:
        """Write the table from the record as it stands: a run that measured nothing renders it too, so a
        change of the table's layout reaches every table through that table's own command."""
        if self.path.exists():
            with self._locked():
                self._write_table()

    def _write_table(self) -> None:
        write_text_atomically(self.table, markdown(self.data, self.command))


#: What a re-measured row keeps of the row it replaces, as ``before``: the search's cost then.
BEFORE_KEYS = ("search_seconds", "evaluations", "measured", "code")


def _before(previous: dict[str, Any] | None, code: str) -> dict[str, Any]:
    """The ``before`` of a row re-measured by ``code``: the earliest cost of the row measured by other code
    (a row re-measured by the same code keeps the ``before`` it had), so the table shows what a change of
    the code did to the search's seconds and evaluations."""
    if previous is None:
        return {}
    if "before" in previous:
        return {"before": previous["before"]}
    if previous.get("code", "unknown") == code:
        return {}
    return {"before": {key: previous.get(key) for key in BEFORE_KEYS}}


def qcapsnets_reached(rows: dict[str, dict]) -> str | None:
    """Which progressive approaches reach the Q-CapsNets baseline's weight reduction, as one line."""
    if "qcapsnets" not in rows:
        return None
    baseline = rows["qcapsnets"]["weight_reduction"]
    reached = [m for m in PROGRESSIVE if m in rows and rows[m]["weight_reduction"] >= baseline]
    return f"reach the Q-CapsNets weight reduction ({baseline:.2f}x): {', '.join(reached) or 'none'}"


QCAPSNETS_ROUNDING = " (the Q-CapsNets baseline rounds to nearest)"


def budget_sentence(settings: dict[str, Any]) -> str:
    reduction = settings.get("weight_reduction")
    if reduction is None:
        return ""
    return (
        f" Weight-memory budget: {reduction:g}x smaller than FP32 (taken by error-guided and qcapsnets; the "
        "other methods go as low as the tolerance allows)."
    )


def markdown(record: dict[str, Any], command: str) -> str:
    settings = record["settings"]
    lines = [
        "# Results",
        "",
        "Regenerated by",
        "",
        "```bash",
        command,
        "```",
        "",
        "which resumes from the JSON record beside this file (each row's allocation, and the commit of the",
        "code that measured it, are there) and adds the zoo models it lacks. Test-set accuracy of the",
        "integer model (integer squash and routing), in torch and in onnxruntime with the custom-op library;",
        "each row's ratios come from one run, on the day and at the commit in its last columns (`+changes`: "
        "the commit plus uncommitted changes). `search s` is wall-clock on",
        "a 2-core machine and grows when other work shares it; `evals` (candidate allocations evaluated) is",
        "the cost to compare methods by. `before`: the search of the row this one replaced, measured by",
        "other code (the JSON record names its commit and day).",
        f"Search criterion: `{settings['criterion']}` (what it means: docs/allocation.md). Bias correction: "
        f"{'on (not in the Q-CapsNets baseline, which has none)' if settings['bias_correction'] else 'off'}. "
        f"Activation clipping: `{settings.get('clip', 'hardware')}`. Weight rounding: "
        f"`{settings.get('weight_rounding', 'nearest')}`"
        f"{QCAPSNETS_ROUNDING if settings.get('weight_rounding') == 'gptq' else ''}."
        f"{budget_sentence(settings)}",
        "`qcapsnets` is the Q-CapsNets search with its own `minmax` clipping, `qcapsnets-clipped` the same",
        "search under this table's clipping and rounding: the two rows separate the method from the",
        "clipping.",
        "",
        "| model | method | FP32 % | torch % | onnxruntime % | loss pp | weights x | activations x "
        "| search s | evals | before: search s | evals | measured | commit |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    summaries = []
    for reference, entry in sorted(record["models"].items()):
        fp32, rows = entry["fp32"], entry["methods"]
        for method, row in sorted(rows.items()):
            before = row.get("before") or {}
            before_seconds = (
                "-" if before.get("search_seconds") is None else f"{before['search_seconds']:.0f}"
            )
            lines.append(
                f"| {reference} | {method} | {fp32:.2f} | {row['torch']:.2f} | {row['onnxruntime']:.2f} | "
                f"{fp32 - row['torch']:.2f} | {row['weight_reduction']:.2f} | "
                f"{row['activation_reduction']:.2f} | {row['search_seconds']:.0f} | {row['evaluations']} | "
                f"{before_seconds} | {before.get('evaluations', '-')} | {row.get('measured', '-')} | "
                f"{row.get('code') or 'not recorded'} |"
            )
        reached = qcapsnets_reached(rows)
        if reached:
            summaries.append(f"- {reference}: {reached}")
    body = "\n".join(lines) + "\n"
    if summaries:
        body += "\nProgressive approaches against the Q-CapsNets baseline, same tolerance:\n\n"
        body += "\n".join(summaries) + "\n"
    return body + "\n" + PUBLISHED


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", action="append", help="zoo:NAME or a checkpoint (repeatable)")
    add_options(
        parser,
        (
            "tolerance",
            "calibration_images",
            "validation_limit",
            "criterion",
            "test_limit",
            "bias_correction",
            "clip",
            "weight_rounding",
            "weight_reduction",
        ),
        SearchConfig,
    )
    parser.add_argument("--method", action="append", help="methods to run (default: all)")
    parser.add_argument(
        "--markdown", default=None, help="also keep the rows in PATH.json and render them as Markdown to PATH"
    )
    parser.add_argument("--fresh", action="store_true", help="re-measure rows the --markdown record has")
    parser.add_argument(
        "--unrecorded",
        action="store_true",
        help="also re-measure the rows of the --markdown record that do not name the commit that measured "
        "them",
    )
    parser.add_argument(
        "--analysis-cache",
        default=None,
        help="folder keeping each model's error-analysis entries, read back by the next run of the same "
        "model and calibration (other criteria, an interrupted run)",
    )
    args = parser.parse_args()
    base = config_from_args(SearchConfig, argparse.Namespace(**{**vars(args), "model": None}))
    try:
        base.settings()
    except ValueError as error:
        parser.error(str(error))
    warnings.simplefilter("ignore")
    keep_freed_memory()  # as capsq does, so that the seconds per row are a capsq run's
    references = args.model or [f"zoo:{name}" for name in available_pretrained()]
    if not references:
        raise SystemExit("the zoo is empty; pass --model CHECKPOINT")
    methods = args.method or available_methods()
    record = None
    if args.markdown:
        settings = settings_of(base)
        defaults = {key: parser.get_default(option) for key, option in SETTINGS.items()}
        command = regenerating_command(settings, defaults, args.markdown)
        try:
            record = Record(
                Path(args.markdown), settings, args.fresh, command, code_version(), args.unrecorded
            )
        except ValueError as error:
            parser.error(str(error))
    for reference in references:
        to_measure = record.missing(reference, methods) if record else methods
        if not to_measure:
            print(f"\n{reference}: every requested method is in {record.path} already (--fresh remeasures)")
            continue
        cache = None
        if args.analysis_cache:
            cache = str(Path(args.analysis_cache) / analysis_cache_name(reference, base))
        config = dataclasses.replace(base, model=reference, analysis_cache=cache)
        inputs = load_inputs(config)
        # A resumed model keeps the FP32 accuracy its earlier rows were measured against (same settings).
        fp32 = record.fp32(reference) if record else None
        if fp32 is None:
            fp32 = evaluate_accuracy(
                inputs.model, inputs.test, limit=config.test_limit, progress=True, description="FP32"
            )
        # Lazy: each entry is measured the first time a method reads it and shared by the methods after it
        # (the block and routing-iteration levels are read by block-routing alone).
        analysis = analyze(inputs, config, progress=True)
        print(f"\n{reference} ({inputs.dataset}): FP32 test {fp32:.2f} %")
        header = ("method", "weights x", "acts x", "test %", "ORT %", "loss pp", "search s", "evals")
        print(f"{header[0]:<22}" + "".join(f"{h:>10}" for h in header[1:]))
        rows = {}
        for method in to_measure:
            allocation = search(inputs, config, method, analysis, progress=True)
            # With the settings the allocation records, as its search measured it.
            quantized = quantize_fx(inputs.model, inputs.calibration, allocation=allocation)
            try:
                accuracy, onnx_accuracy = integer_accuracies(quantized, inputs, config.test_limit, method)
            except ExportError as error:
                # An hour of search should not vanish with the error: the allocation reproduces it.
                folder = Path(args.markdown).with_suffix("") if args.markdown else Path.cwd()
                kept = allocation.save(folder / f"failed-{file_stem(reference)}-{method}.json")
                raise ExportError(f"{error} (the allocation is kept in {kept})") from error
            info = allocation.info
            rows[method] = {key: info[key] for key in ROW_KEYS}
            rows[method].update(torch=accuracy, onnxruntime=onnx_accuracy, allocation=allocation.to_dict())
            if record:
                record.add(reference, fp32, method, rows[method])
            cells = (
                f"{info['weight_reduction']:.2f}",
                f"{info['activation_reduction']:.2f}",
                f"{accuracy:.2f}",
                f"{onnx_accuracy:.2f}",
                f"{fp32 - accuracy:.2f}",
                f"{info['search_seconds']:.0f}",
                str(info["evaluations"]),
            )
            print(f"{method:<22}" + "".join(f"{c:>10}" for c in cells))
        print(f"error analysis: {analysis.seconds:.0f} s, not counted in the search times")
        reached = qcapsnets_reached(record.model(reference)["methods"] if record else rows)
        if reached:
            print(reached)
    if record:
        record.render()


if __name__ == "__main__":
    raise SystemExit(run_reporting_user_errors(main, Path(__file__).name))
