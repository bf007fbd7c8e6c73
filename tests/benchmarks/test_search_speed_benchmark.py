"""benchmarks/search_speed.py times `capsq quantize` end to end and renders the before/after table; and
benchmarks/allocation.py keeps the search cost of a row it re-measures with other code as `before`."""

import json
import subprocess
import sys
from pathlib import Path

from benchmark_scripts import load_benchmark

ROOT = Path(__file__).resolve().parents[2]


search_speed = load_benchmark("search_speed.py")
allocation_benchmark = load_benchmark("allocation.py")
#: A budget that keeps `capsq quantize` on an untrained ShallowCaps to seconds.
SMALL = ["--tolerance", "100", "--calibration", "128", "--validation-limit", "100", "--limit", "100"]
SMALL += ["--analysis-images", "16", "--analysis-bits", "4", "8"]


def test_one_row_times_capsq_quantize_and_renders_the_table(untrained_mnist_checkpoint, tmp_path):
    markdown = tmp_path / "not-yet" / "speed.md"  # the folder is made before the first row is measured
    command = [sys.executable, str(ROOT / "benchmarks" / "search_speed.py"), "--model"]
    command += [
        str(untrained_mnist_checkpoint),
        "--method",
        "uniform-8",
        "--markdown",
        str(markdown),
        "--",
        *SMALL,
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "integer dot-product flags:" in completed.stdout
    record = json.loads(markdown.with_suffix(".json").read_text())
    (row,) = record["rows"].values()
    assert row["side"] == "after" and row["code"] == search_speed.code_version()
    assert (
        row["evaluations"] == 1 and round(row["weight_reduction"], 2) == 4.0
    )  # uniform 8 bits: one evaluation
    assert row["seconds"] > row["search_seconds"] > 0 and row["load_mean"] is not None
    table = markdown.read_text()
    cells = next(line for line in table.splitlines() if line.startswith(f"| {untrained_mnist_checkpoint} |"))
    cells = [cell.strip() for cell in cells.strip("|").split("|")]
    assert cells[1:4] == ["uniform-8", "-", "-"] and cells[4] == f"{row['seconds']:.0f}" and cells[5] == "1"
    assert "CPU: " in table and "--method uniform-8" in table
    # The job's own phases: where its seconds went.
    assert {"error_analysis", "search:uniform-8", "fp32_test", "integer_test"} <= set(row["phases"])
    assert cells[17].startswith(f"{sum(row['phases'].values()):.0f} s: loading ")
    # Where the search's evaluations went: the chosen allocation is always scored on every image.
    cost = row["evaluation_cost"]
    assert cost["complete"] == 1 and cost["complete_seconds"] > 0 and cost["stopped"] <= 1
    assert cells[8] == search_speed.describe_cost(cost) and cells[8].startswith("1 in ")
    # The rerun reads back the error analysis and the FP32 test pass: the same answer, those phases cheap.
    rerun = row["rerun"]
    assert rerun["same"] and cells[18] == f"{rerun['seconds']:.0f}"
    assert rerun["phases"]["fp32_test"] < row["phases"]["fp32_test"]
    assert rerun["phases"]["error_analysis"] < row["phases"]["error_analysis"]


def test_the_table_puts_before_and_after_side_by_side():
    layers = {"conv": {"weight": 4}}
    rows = {
        "m x before": {
            "model": "m",
            "method": "x",
            "side": "before",
            "seconds": 900.0,
            "evaluations": 30,
            "code": "aaaa",
            "layers": layers,
        },
        "m x after": {
            "model": "m",
            "method": "x",
            "side": "after",
            "seconds": 300.0,
            "evaluations": 30,
            "search_seconds": 200.0,
            "weight_reduction": 5.0,
            "activation_reduction": 4.0,
            "test_loss_pp": 0.05,
            "load_mean": 1.5,
            "load_max": 2.25,
            "code": "bbbb",
            "measured": "2026-12-06T20:00",
            "layers": layers,
            "cpu": "CPU X",
        },
    }
    table = search_speed.markdown({"rows": rows}, "python benchmarks/search_speed.py")
    line = next(line for line in table.splitlines() if line.startswith("| m | x |"))
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[2:7] == ["900", "30", "300", "30", "3.0x"]
    assert cells[8] == "-"  # measured before jobs recorded where their evaluations' time went
    assert cells[12:16] == ["yes", "1.5 / 2.2", "aaaa", "bbbb"]
    assert cells[17] == "-"  # measured before jobs timed their phases
    rows["m x after"]["phases"] = {"error_analysis": 60.0, "search:x": 200.0, "integer_test": 40.0}
    table = search_speed.markdown({"rows": rows}, "python benchmarks/search_speed.py")
    line = next(line for line in table.splitlines() if line.startswith("| m | x |"))
    assert line.endswith("| 300 s: error analysis 60 s, search:x 200 s, integer test 40 s | - | - |")
    rows["m x after"]["rerun"] = {"seconds": 210.0, "phases": {"search:x": 190.0, "integer_test": 20.0}}
    table = search_speed.markdown({"rows": rows}, "python benchmarks/search_speed.py")
    line = next(line for line in table.splitlines() if line.startswith("| m | x |"))
    assert line.endswith("| 210 | 210 s: search:x 190 s, integer test 20 s |")
    cost = {"complete": 3, "complete_seconds": 150.2, "stopped": 9, "stopped_seconds": 20.0}
    rows["m x after"]["evaluation_cost"] = {**cost, "stopped_images": 900, "build_seconds": 12.4}
    table = search_speed.markdown({"rows": rows}, "python benchmarks/search_speed.py")
    line = next(line for line in table.splitlines() if line.startswith("| m | x |"))
    assert "| 200 | 3 in 150 s / 9 in 20 s / 12 s | 5.00 |" in line


def test_a_row_remeasured_by_other_code_keeps_the_old_search_cost_as_before():
    old = {
        "search_seconds": 671.0,
        "evaluations": 23,
        "measured": "2026-12-02",
        "code": "aaaa",
        "torch": 99.0,
    }
    assert allocation_benchmark._before(None, "bbbb") == {}
    assert allocation_benchmark._before(old, "aaaa") == {}  # the same code: nothing to compare with
    before = allocation_benchmark._before(old, "bbbb")
    assert before == {
        "before": {"search_seconds": 671.0, "evaluations": 23, "measured": "2026-12-02", "code": "aaaa"}
    }
    # Measured once more: the earliest cost stays.
    assert allocation_benchmark._before({**old, "code": "bbbb", **before}, "cccc") == before
