"""Wall-clock of ``capsq quantize`` per zoo model and method: the search-speed table of issue 33.

    python benchmarks/search_speed.py --markdown docs/search-speed.md        # every zoo model and method
    python benchmarks/search_speed.py --model zoo:deepcaps-mnist --method error-guided --markdown ...
    python benchmarks/search_speed.py --model zoo:deepcaps-fmnist --compare --markdown ...   # --compare
    python benchmarks/search_speed.py --before 0a4254e --model zoo:shallowcaps-mnist --method qcapsnets

Each row is one ``capsq quantize --model M --method X`` (or ``--compare``) in a process of its own, the
command a user types, timed from start to exit: the error analysis, the search, the FP32 and integer
test-set evaluations and the report, all of it. Runs go one at a time. Beside the seconds: the evaluations
and search seconds the report gives, the memory reductions and the test-set loss, the load average over the
run (sampled every 5 s: ``capsq`` uses every core, so a load above the core count means the run shared them),
the commit that measured it and the date.

Each run starts with an empty ``--reuse-dir`` of its own (what a first run on a machine costs, whatever the
plugin's cache holds). Unless ``--first-run-only``, the same command then runs again with that folder: the
``rerun`` columns, what an engineer trying another method or tolerance on the model waits (the error
analysis and the FP32 test pass read back, job/reuse.py). Code older than ``--reuse-dir`` gets no rerun.

``--before REF`` also times the package of commit ``REF`` (``git archive`` into a temporary folder, run with
this environment) right before each row, so that the pair is measured on one machine minutes apart; rows
already recorded for the same code are not measured again (``--fresh`` re-measures them). The table puts
the two side by side, with whether they chose the same allocation. Extra ``capsq quantize`` options follow
``--``, e.g. ``-- --validation-limit 1000``.

With ``--markdown PATH`` every row is kept in ``PATH`` with the suffix ``.json`` the moment it is measured,
and the Markdown is rendered from that record (a run resumes where an interrupted one stopped).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from capsnet_nncf_plugin.atomic_file import write_text_atomically
from capsnet_nncf_plugin.job.timing import PhaseTimer

ROOT = Path(__file__).resolve().parents[1]
BUILT_IN_METHODS = (
    "error-guided",
    "progressive-descent",
    "block-routing",
    "rate-distortion",
    "uniform-8",
    "qcapsnets",
)
ZOO = ("shallowcaps-mnist", "shallowcaps-fmnist", "deepcaps-mnist", "deepcaps-fmnist")
COMPARE = "--compare"
#: CPU flags of integer dot-product instructions (x86 VNNI and AMX, Arm dot product).
DOT_PRODUCT_FLAGS = re.compile(r"^(avx512_vnni|avx_vnni|avx_vnni_int8|amx_int8|asimddp|sve_i8mm|i8mm)$")
#: Runs the package of another commit with this environment: an editable install's import hook would
#: otherwise find this checkout first.
LAUNCHER = (
    "import sys; "
    "sys.meta_path = [f for f in sys.meta_path if 'editable' not in type(f).__module__.lower()]; "
    "sys.path.insert(0, sys.argv.pop(1)); "
    "from capsnet_nncf_plugin.cli import main; sys.exit(main(sys.argv[1:]))"
)


def cpu_description() -> str:
    """The CPU's model, its cores and its integer dot-product flags, from ``lscpu``."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return f"{os.cpu_count()} CPUs (lscpu unavailable)"
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = sorted(flag for flag in fields.get("Flags", "").split() if DOT_PRODUCT_FLAGS.match(flag))
    return (
        f"{fields.get('Model name', 'unknown CPU')}, {fields.get('CPU(s)', '?')} CPUs, integer dot-product "
        f"flags: {', '.join(flags) or 'none'}"
    )


def git(*arguments: str) -> str:
    command = ["git", "-C", str(ROOT), *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout.strip()


def code_version() -> str:
    """This checkout's commit, ``+changes`` when its package sources differ from it."""
    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", "capsnet_nncf_plugin")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+changes" if changed else commit


def export_commit(reference: str, folder: Path) -> str:
    """The package of commit ``reference``, exported into ``folder``; returns the commit's short hash."""
    commit = git("rev-parse", "--short=12", reference)
    archive = folder / "source.tar"
    with archive.open("wb") as output:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit], stdout=output, check=True, timeout=300)
    with tarfile.open(archive) as bundle:
        bundle.extractall(folder, filter="data")
    return commit


class LoadSampler:
    """The 1-minute load average every 5 s while a run lasts: its mean and maximum."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(5.0):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_quantize(
    model: str, method: str, extra: list[str], tree: Path | None, reuse: Path | None = None
) -> dict[str, Any]:
    """One ``capsq quantize`` run, timed; what its summary.json reports. ``reuse``: its ``--reuse-dir``
    (None: the code predates it)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "report"
        selection = [COMPARE] if method == COMPARE else ["--method", method]
        arguments = ["quantize", "--model", model, *selection, "--out", str(out), "--no-progress", *extra]
        if reuse is not None:
            arguments += ["--reuse-dir", str(reuse)]
        if tree is None:
            command = [sys.executable, "-m", "capsnet_nncf_plugin.cli", *arguments]
        else:
            command = [sys.executable, "-c", LAUNCHER, str(tree), *arguments]
        started = time.perf_counter()
        with LoadSampler() as load:
            completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=folder)
        seconds = time.perf_counter() - started
        if completed.returncode != 0:
            raise RuntimeError(f"{' '.join(arguments)} failed:\n{completed.stderr[-4000:]}")
        summary = json.loads((out / "summary.json").read_text())
        allocation = json.loads((out / "allocation.json").read_text())
    methods = {entry["method"]: entry for entry in summary["methods"]}
    chosen = methods[allocation.get("method") or next(iter(methods))]
    test = summary["test"]
    return {
        "seconds": seconds,
        "evaluations": sum(int(entry.get("evaluations", 0)) for entry in methods.values()),
        "evaluation_cost": evaluation_cost(methods.values()),
        "search_seconds": sum(float(entry.get("search_seconds", 0.0)) for entry in methods.values()),
        "weight_reduction": chosen.get("weight_reduction"),
        "activation_reduction": chosen.get("activation_reduction"),
        "test_loss_pp": test["fp32_accuracy"] - test["accuracy"],
        "layers": allocation.get("layers"),
        "phases": summary.get("seconds"),  # the job's own timing of its phases (older jobs: none)
        "load_mean": statistics.fmean(load.samples) if load.samples else None,
        "load_max": max(load.samples, default=None),
        "measured": datetime.datetime.now().isoformat(timespec="minutes"),
    }


def evaluation_cost(methods: Iterable[dict[str, Any]]) -> dict[str, float] | None:
    """The evaluation costs of every method of a run, added up (None where the code recorded none)."""
    costs = [entry["evaluation_cost"] for entry in methods if "evaluation_cost" in entry]
    if not costs:
        return None
    return {key: sum(cost[key] for cost in costs) for key in costs[0]}


def describe_cost(cost: dict[str, float] | None) -> str:
    """``complete / stopped early / build``: evaluations and seconds (a table cell)."""
    if not cost:
        return "-"
    return (
        f"{cost['complete']:.0f} in {cost['complete_seconds']:.0f} s / "
        f"{cost['stopped']:.0f} in {cost['stopped_seconds']:.0f} s / {cost['build_seconds']:.0f} s"
    )


def time_runs(
    model: str, method: str, extra: list[str], tree: Path | None, first_run_only: bool
) -> dict[str, Any]:
    """A first run with an empty reuse folder and, unless ``first_run_only``, a rerun with it (``rerun``:
    its seconds, phases and whether it chose the same allocation)."""
    source = ROOT if tree is None else tree
    if not (source / "capsnet_nncf_plugin" / "job" / "reuse.py").exists():  # code before --reuse-dir
        return run_quantize(model, method, extra, tree)
    with tempfile.TemporaryDirectory() as reuse:
        row = run_quantize(model, method, extra, tree, Path(reuse))
        if not first_run_only:
            again = run_quantize(model, method, extra, tree, Path(reuse))
            row["rerun"] = {
                "seconds": again["seconds"],
                "phases": again["phases"],
                "same": again["layers"] == row["layers"],
            }
    return row


class Record:
    """Rows by model, method and side (``before`` / ``after``), kept as JSON beside the Markdown."""

    def __init__(self, markdown: Path | None, fresh: bool) -> None:
        self.markdown = markdown
        self.path = None if markdown is None else markdown.with_suffix(".json")
        self.data: dict[str, Any] = {"rows": {}}
        if markdown is not None:  # made now: a row measured for minutes must find its folder
            markdown.parent.mkdir(parents=True, exist_ok=True)
        if self.path is not None and self.path.exists() and not fresh:
            self.data = json.loads(self.path.read_text())

    @staticmethod
    def key(model: str, method: str, side: str) -> str:
        return f"{model} {method} {side}"

    def get(self, model: str, method: str, side: str, code: str) -> dict[str, Any] | None:
        row = self.data["rows"].get(self.key(model, method, side))
        return row if row is not None and row.get("code") == code else None

    def add(self, model: str, method: str, side: str, row: dict[str, Any], cpu: str) -> None:
        self.data["rows"][self.key(model, method, side)] = {
            **row,
            "model": model,
            "method": method,
            "cpu": cpu,
        }
        if self.path is not None:
            write_text_atomically(self.path, json.dumps(self.data, indent=2) + "\n")
            write_text_atomically(self.markdown, markdown(self.data, command_line()))


def command_line() -> str:
    return " ".join(["python benchmarks/search_speed.py", *sys.argv[1:]])


def _cell(row: dict[str, Any] | None, key: str, form: str) -> str:
    return "-" if row is None or row.get(key) is None else format(row[key], form)


def markdown(data: dict[str, Any], command: str) -> str:
    rows = data["rows"]
    pairs: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows.values():
        side = "before" if row.get("side") == "before" else "after"
        pairs.setdefault((row["model"], row["method"]), {})[side] = row
    cpus = sorted({row.get("cpu", "") for row in rows.values()})
    lines = [
        "# Search speed",
        "",
        "Measured by",
        "",
        "```bash",
        command,
        "```",
        "",
        "Each row is one `capsq quantize --model M --method X` (or `--compare`, every method) timed from",
        "start to exit: error analysis, search, FP32 and integer test-set evaluation and report. `before`",
        "is the code of the commit named in its column, `after` this one's; `load` is the 1-minute load",
        "average over the run (mean / max; above the core count the run shared the cores). `evals`: the",
        "candidate allocations evaluated; `complete / stopped / build`: the evaluations scored on",
        "every validation image (count, seconds), those stopped early once they surely failed, and the",
        "seconds spent building candidates (each search's `evaluation_cost` in summary.json, added up);",
        "`same`: whether both chose the same allocation; `phases`: where",
        "the job's time went, as its summary.json reports it (total of the phases, then each). Each run",
        "starts with an empty `--reuse-dir`; `rerun`: the same command once more with that folder, which",
        "reads back the error analysis and the FP32 test pass.",
        "",
        *(f"CPU: {cpu}" for cpu in cpus),
        "",
        "| model | method | before s | before evals | after s | after evals | speed-up | search s | "
        "complete / stopped / build | weights x | activations x | test loss pp | same | load | before code | "
        "after code | measured | phases | rerun s | rerun phases |",
        "| --- | --- " + "| ---: " * 6 + "| --- " + "| ---: " * 3 + "| --- " * 6 + "| ---: | --- |",
    ]
    for (model, method), sides in sorted(pairs.items()):
        before, after = sides.get("before"), sides.get("after")
        speedup = "-"
        if before and after:
            speedup = f"{before['seconds'] / after['seconds']:.1f}x"
        same = "-"
        if before and after and before.get("layers") and after.get("layers"):
            same = "yes" if before["layers"] == after["layers"] else "no"
        shown = after or before
        load = "-"
        if shown.get("load_mean") is not None:
            load = f"{shown['load_mean']:.1f} / {shown['load_max']:.1f}"
        cells = [
            model,
            method,
            _cell(before, "seconds", ".0f"),
            _cell(before, "evaluations", "d"),
            _cell(after, "seconds", ".0f"),
            _cell(after, "evaluations", "d"),
            speedup,
            _cell(shown, "search_seconds", ".0f"),
            describe_cost(shown.get("evaluation_cost")),
            _cell(shown, "weight_reduction", ".2f"),
            _cell(shown, "activation_reduction", ".2f"),
            _cell(shown, "test_loss_pp", ".2f"),
            same,
            load,
            (before or {}).get("code", "-"),
            (after or {}).get("code", "-"),
            shown.get("measured", "-"),
            PhaseTimer(dict(shown["phases"])).describe() if shown.get("phases") else "-",
            _cell(shown.get("rerun"), "seconds", ".0f"),
            PhaseTimer(dict(shown["rerun"]["phases"])).describe() if shown.get("rerun") else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", action="append", help="zoo:NAME or a checkpoint (repeatable; default: the zoo)"
    )
    parser.add_argument(
        "--method", action="append", help="a method (repeatable; default: every built-in one)"
    )
    parser.add_argument("--compare", action="store_true", help="time `capsq quantize --compare` instead")
    parser.add_argument("--before", metavar="REF", help="also time the package of this commit")
    parser.add_argument("--markdown", type=Path, help="keep the rows in PATH.json and render them to PATH")
    parser.add_argument("--fresh", action="store_true", help="re-measure rows the record has")
    parser.add_argument(
        "--first-run-only", action="store_true", help="skip the rerun that reads back the reused measurements"
    )
    parser.add_argument("extra", nargs="*", help="options passed on to capsq quantize (after --)")
    args = parser.parse_args()
    models = args.model or [f"zoo:{name}" for name in ZOO]
    methods = [COMPARE] if args.compare else (args.method or list(BUILT_IN_METHODS))
    record, cpu, after_code = Record(args.markdown, args.fresh), cpu_description(), code_version()
    print(f"CPU: {cpu}\nafter: {after_code}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        before_code = export_commit(args.before, Path(folder)) if args.before else None
        sides = [("before", Path(folder), before_code)] if before_code else []
        sides.append(("after", None, after_code))
        for model in models:
            for method in methods:
                for side, tree, code in sides:
                    if record.get(model, method, side, code):
                        print(f"{model} {method} {side}: recorded for {code} already (--fresh re-measures)")
                        continue
                    row = time_runs(model, method, args.extra, tree, args.first_run_only)
                    row.update(side=side, code=code)
                    record.add(model, method, side, row, cpu)
                    load = f"load {row['load_mean']:.1f} / {row['load_max']:.1f}"
                    print(
                        f"{model} {method} {side} ({code}): {row['seconds']:.0f} s, {row['evaluations']} "
                        f"evals, search {row['search_seconds']:.0f} s, {load}",
                        flush=True,
                    )
    if args.markdown:
        args.markdown.write_text(markdown(record.data, command_line()))


if __name__ == "__main__":
    main()
