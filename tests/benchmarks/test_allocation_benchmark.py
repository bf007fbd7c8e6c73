"""benchmarks/allocation.py end to end on a small budget: it runs, prints its table, writes the Markdown
and the JSON record behind it, resumes from that record and refuses to mix settings."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from benchmark_scripts import load_benchmark

from capsnet_nncf_plugin.errors import ConfigError
from capsnet_nncf_plugin.job import JobInputs, SearchConfig
from capsnet_nncf_plugin.job.search import weight_budget_bits

ROOT = Path(__file__).resolve().parents[2]
allocation_benchmark = load_benchmark("allocation.py")
SMALL_BUDGET = ["--method", "uniform-8", "--tolerance", "100", "--calibration", "128"]
SMALL_BUDGET += ["--criterion", "accuracy", "--validation-limit", "100", "--limit", "100"]


def run_benchmark(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "benchmarks" / "allocation.py"), *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)


def row_cells(table: str, model: str, method: str) -> list[str]:
    row = next(line for line in table.splitlines() if line.startswith(f"| {model} | {method} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_allocation_benchmark_writes_resumes_and_extends_the_reproduction_table(
    untrained_mnist_checkpoint, tmp_path
):
    markdown, record = tmp_path / "results.md", tmp_path / "results.json"
    first = str(untrained_mnist_checkpoint)
    completed = run_benchmark(tmp_path, "--model", first, *SMALL_BUDGET, "--markdown", str(markdown))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "uniform-8" in completed.stdout
    table = markdown.read_text()
    cells = row_cells(table, first, "uniform-8")
    # 8-bit everywhere: 4x on weights and activations; torch and onnxruntime agree on every image.
    assert cells[6:8] == ["4.00", "4.00"]
    assert cells[3] == cells[4]
    assert "Search criterion: `accuracy`" in table and "Published figures" in table
    assert "--criterion accuracy --limit 100 --markdown" in table  # the regenerating command
    stored = json.loads(record.read_text())
    assert stored["settings"]["tolerance"] == 100 and stored["settings"]["validation_limit"] == 100
    row = stored["models"][first]["methods"]["uniform-8"]
    assert round(row["weight_reduction"], 2) == 4.0 and f"{row['torch']:.2f}" == cells[3]
    assert {layer["weight"] for layer in row["allocation"]["layers"].values()} == {8}
    # Which code measured the row: this checkout's commit, marked when its package sources differ from it.
    assert row["code"] == allocation_benchmark.code_version()
    assert cells[-2:] == [row["measured"], row["code"]]

    # The same settings again with a second model: the first is taken from the record, not re-measured.
    second = tmp_path / "second.pt"
    shutil.copyfile(untrained_mnist_checkpoint, second)
    completed = run_benchmark(
        tmp_path, "--model", first, "--model", str(second), *SMALL_BUDGET, "--markdown", str(markdown)
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"{first}: every requested method is in {record}" in completed.stdout
    extended = json.loads(record.read_text())
    assert extended["models"][first] == stored["models"][first]
    assert row_cells(markdown.read_text(), str(second), "uniform-8")[6:8] == ["4.00", "4.00"]
    assert row_cells(markdown.read_text(), first, "uniform-8") == cells

    # Other settings would mix two experiments in one table: refused, nothing rewritten.
    before = markdown.read_text(), record.read_text()
    other = [*SMALL_BUDGET[:3], "50", *SMALL_BUDGET[4:]]
    completed = run_benchmark(tmp_path, "--model", first, *other, "--markdown", str(markdown))
    assert completed.returncode == 2
    last_line = completed.stderr.strip().splitlines()[-1]
    assert f"{record} holds rows measured with" in last_line and "--fresh" in last_line
    assert (markdown.read_text(), record.read_text()) == before


def test_two_runs_sharing_a_record_keep_each_others_rows(tmp_path):
    # One run per core, on different models, both opened the record before either wrote a row.
    settings = {"tolerance": 0.1, "criterion": "losses", "bias_correction": False}
    table = tmp_path / "results.md"
    first = allocation_benchmark.Record(table, settings, fresh=False, command="regenerate")
    second = allocation_benchmark.Record(table, settings, fresh=False, command="regenerate")
    row = {"weight_reduction": 7.0, "activation_reduction": 4.0, "search_seconds": 1.0, "evaluations": 2}
    first.add("zoo:a", 99.0, "error-guided", {**row, "torch": 98.9, "onnxruntime": 98.9})
    second.add("zoo:b", 92.0, "qcapsnets", {**row, "torch": 91.8, "onnxruntime": 91.8})
    first.add("zoo:a", 99.0, "uniform-8", {**row, "torch": 99.0, "onnxruntime": 99.0})
    stored = json.loads(table.with_suffix(".json").read_text())
    assert {model: sorted(entry["methods"]) for model, entry in stored["models"].items()} == {
        "zoo:a": ["error-guided", "uniform-8"],
        "zoo:b": ["qcapsnets"],
    }
    assert stored["models"]["zoo:b"]["fp32"] == 92.0
    rendered = table.read_text()
    assert "| zoo:b | qcapsnets | 92.00 | 91.80 |" in rendered and "| zoo:a | uniform-8 |" in rendered


def test_a_row_another_run_measured_again_is_not_overwritten_by_the_copy_read_back_before(tmp_path):
    # Two --fresh runs on one model, split by method: the second read the first method's old row back
    # with its own first row, before the first run measured that method again.
    settings = {"tolerance": 0.1, "criterion": "losses", "bias_correction": False}
    table = tmp_path / "results.md"
    row = {"weight_reduction": 7.0, "activation_reduction": 4.0, "search_seconds": 1.0, "evaluations": 2}
    old = {**row, "torch": 98.0, "onnxruntime": 98.0}
    earlier = allocation_benchmark.Record(table, settings, fresh=False, command="regenerate")
    earlier.add("zoo:a", 99.0, "block-routing", old)
    first = allocation_benchmark.Record(table, settings, fresh=True, command="regenerate")
    second = allocation_benchmark.Record(table, settings, fresh=True, command="regenerate")
    second.add("zoo:a", 99.0, "qcapsnets", {**row, "torch": 98.7, "onnxruntime": 98.7})
    first.add("zoo:a", 99.0, "block-routing", {**row, "torch": 98.5, "onnxruntime": 98.5})
    second.add("zoo:a", 99.0, "rate-distortion", {**row, "torch": 98.6, "onnxruntime": 98.6})
    methods = json.loads(table.with_suffix(".json").read_text())["models"]["zoo:a"]["methods"]
    assert {method: entry["torch"] for method, entry in methods.items()} == {
        "block-routing": 98.5,
        "qcapsnets": 98.7,
        "rate-distortion": 98.6,
    }
    assert "| zoo:a | block-routing | 99.00 | 98.50 |" in table.read_text()


def test_the_code_version_names_the_checked_out_commit_and_uncommitted_package_changes(tmp_path, monkeypatch):
    package = tmp_path / "capsnet_nncf_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("")

    def git(*arguments: str) -> str:
        command = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *arguments]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()

    monkeypatch.setattr(allocation_benchmark.capsnet_nncf_plugin, "__file__", str(package / "__init__.py"))
    assert allocation_benchmark.code_version() is None  # not a git checkout
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    commit = git("rev-parse", "--short=12", "HEAD")
    assert allocation_benchmark.code_version() == commit
    (package / "__init__.py").write_text("CHANGED = True\n")
    assert allocation_benchmark.code_version() == f"{commit}+changes"
    (package / "new_module.py").write_text("")  # untracked: not imported by the measured code
    git("checkout", "-q", "--", ".")
    assert allocation_benchmark.code_version() == commit


def test_rows_recorded_before_their_date_was_kept_render_a_dash():
    row = {"weight_reduction": 7.0, "activation_reduction": 4.0, "search_seconds": 1.0, "evaluations": 2}
    record = {
        "settings": {"criterion": "losses", "bias_correction": False},
        "models": {
            "zoo:a": {"fp32": 99.0, "methods": {"qcapsnets": {**row, "torch": 98.9, "onnxruntime": 98.9}}}
        },
    }
    line = next(line for line in allocation_benchmark.markdown(record, "c").splitlines() if "zoo:a" in line)
    # search s, evals, the before columns (none measured by other code), the missing date and commit
    assert line.endswith("| 1 | 2 | - | - | - | not recorded |")


def test_a_row_remeasured_by_other_code_keeps_the_old_cost_as_before():
    old = {"search_seconds": 600.0, "evaluations": 20, "measured": "2026-12-01", "code": "aaaa"}
    assert allocation_benchmark._before(old, "bbbb") == {"before": old}
    assert allocation_benchmark._before(old, "aaaa") == {}
    kept = {**old, "before": {"search_seconds": 900.0}}
    assert allocation_benchmark._before(kept, "cccc") == {"before": {"search_seconds": 900.0}}


def test_a_run_that_measures_nothing_renders_the_table_from_its_record(tmp_path):
    settings = {"tolerance": 0.1, "criterion": "losses", "bias_correction": False}
    table = tmp_path / "results.md"
    row = {"weight_reduction": 7.0, "activation_reduction": 4.0, "search_seconds": 1.0, "evaluations": 2}
    allocation_benchmark.Record(table, settings, fresh=False, command="regenerate").add(
        "zoo:a", 99.0, "error-guided", {**row, "torch": 98.9, "onnxruntime": 98.9}
    )
    table.write_text("a table in an older layout\n")
    rerun = allocation_benchmark.Record(table, settings, fresh=False, command="regenerate")
    assert rerun.missing("zoo:a", ["error-guided"]) == []
    rerun.render()
    assert "| zoo:a | error-guided | 99.00 | 98.90 |" in table.read_text()
    # Without a record there is no table to render, and none is written.
    allocation_benchmark.Record(tmp_path / "other.md", settings, fresh=False, command="c").render()
    assert not (tmp_path / "other.md").exists()


def test_unrecorded_remeasures_only_the_rows_that_do_not_name_their_commit(tmp_path):
    settings = {"tolerance": 0.1, "criterion": "losses", "bias_correction": False}
    table = tmp_path / "results.md"
    row = {"weight_reduction": 7.0, "activation_reduction": 4.0, "search_seconds": 1.0, "evaluations": 2}
    record = allocation_benchmark.Record(table, settings, fresh=False, command="regenerate", code="abcd")
    for method in ("error-guided", "uniform-8"):
        record.add("zoo:a", 99.0, method, {**row, "torch": 98.9, "onnxruntime": 98.9})
    stored = json.loads(record.path.read_text())
    del stored["models"]["zoo:a"]["methods"]["uniform-8"]["code"]  # as the rows of 2026-12-02
    record.path.write_text(json.dumps(stored))
    methods = ["error-guided", "uniform-8", "qcapsnets"]
    plain = allocation_benchmark.Record(table, settings, fresh=False, command="regenerate")
    assert plain.missing("zoo:a", methods) == ["qcapsnets"]
    unrecorded = allocation_benchmark.Record(table, settings, False, "regenerate", unrecorded=True)
    assert unrecorded.missing("zoo:a", methods) == ["uniform-8", "qcapsnets"]


def test_runs_of_one_model_under_other_analysis_settings_keep_separate_caches():
    def name(**changes):
        config = SearchConfig(**changes)
        return allocation_benchmark.analysis_cache_name("zoo:deepcaps-fmnist", config)

    assert name() == "zoo-deepcaps-fmnist-calibration512-clip-hardware-nearest.json"
    variants = [name(), name(clip="mse"), name(weight_rounding="gptq"), name(bias_correction=True)]
    variants.append(name(calibration_images=128))
    assert len(set(variants)) == len(variants)


def test_a_weight_reduction_is_a_budget_in_bits_and_part_of_the_settings(tmp_path):
    inputs = JobInputs(torch.nn.Linear(10, 4), "mnist", None, None, [], {})  # 44 parameters
    assert weight_budget_bits(inputs, SearchConfig()) is None  # the default: no budget
    assert weight_budget_bits(inputs, SearchConfig(weight_reduction=8.0)) == 44 * 32 / 8
    # A budget in MB, and both at once a contradiction.
    assert weight_budget_bits(inputs, SearchConfig(weight_memory_budget=1.0)) == 8e6
    with pytest.raises(ConfigError, match="both set the weights budget"):
        SearchConfig(weight_memory_budget=1.0, weight_reduction=4.0, out_dir=str(tmp_path)).check()
    defaults = {name: None for name in allocation_benchmark.SETTINGS}
    settings = {**defaults, "weight_reduction": 7.0}
    command = allocation_benchmark.regenerating_command(settings, defaults, "docs/results-budget.md")
    assert (
        command == "python benchmarks/allocation.py --weight-reduction 7.0 --markdown docs/results-budget.md"
    )
    # A record older than the option was measured without a budget.
    assert allocation_benchmark.stored_settings({"settings": {"tolerance": 0.1}})["weight_reduction"] is None
    assert "7x smaller than FP32" in allocation_benchmark.budget_sentence(settings)
    assert allocation_benchmark.budget_sentence(defaults) == ""
    # No budget where the default has one is spelled "none", a count over every image "all".
    without_budget = allocation_benchmark.regenerating_command(
        {**defaults, "weight_reduction": None, "validation_limit": None},
        {**defaults, "weight_reduction": 8.0, "validation_limit": 2000},
        "docs/results-hardware.md",
    )
    assert "--validation-limit all --weight-reduction none --markdown" in without_budget


def test_a_fresh_run_remeasures_every_model_even_after_reading_back_the_record(tmp_path):
    settings = {"tolerance": 0.1, "criterion": "losses", "bias_correction": False}
    table = tmp_path / "results.md"
    row = {"weight_reduction": 7.0, "activation_reduction": 4.0, "search_seconds": 1.0, "evaluations": 2}
    earlier = allocation_benchmark.Record(table, settings, fresh=False, command="regenerate")
    for model in ("zoo:a", "zoo:b"):
        earlier.add(model, 99.0, "error-guided", {**row, "torch": 98.0, "onnxruntime": 98.0})
    fresh = allocation_benchmark.Record(table, settings, fresh=True, command="regenerate")
    assert fresh.missing("zoo:a", ["error-guided"]) == ["error-guided"]
    fresh.add("zoo:a", 99.0, "error-guided", {**row, "torch": 98.5, "onnxruntime": 98.5})
    # Adding zoo:a read zoo:b's old row back; it is kept, and still measured again by this run.
    assert fresh.missing("zoo:a", ["error-guided"]) == []
    assert fresh.missing("zoo:b", ["error-guided"]) == ["error-guided"]
    stored = json.loads(table.with_suffix(".json").read_text())["models"]
    assert stored["zoo:a"]["methods"]["error-guided"]["torch"] == 98.5
    assert stored["zoo:b"]["methods"]["error-guided"]["torch"] == 98.0
