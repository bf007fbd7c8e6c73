"""benchmarks/reliability.py with a few fuzz rounds: every hostile input is refused cleanly, reported or
valid; none crashes, and the real dataset cache is left as it was."""

import os
import re
import subprocess
import sys
from pathlib import Path

from capsnet_nncf_plugin.data import cache_dir

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(
    r"^\| (?P<category>[^|]+) \| `(?P<source>[^`]+)` \| (?P<cases>\d+) \| (?P<counts>[\d |]+) \|$"
)


def cache_state(folder: Path) -> dict[str, tuple[int, int]]:
    if not folder.is_dir():
        return {}
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_no_hostile_input_crashes(tmp_path):
    before = cache_state(cache_dir())
    command = [sys.executable, str(ROOT / "benchmarks" / "reliability.py"), "--fuzz-rounds", "3"]
    env = {**os.environ, "CAPSQ_CACHE": str(cache_dir())}
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path, env=env
    )
    lines = completed.stdout.splitlines()
    crashes = [line for line in lines if line.startswith("CRASH ")]
    assert crashes == [], "\n".join(crashes)
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [ROW.match(line) for line in lines]
    rows = [row for row in rows if row]
    sources = {row["source"] for row in rows}
    # Every kind of hostile input ran, through the API and the command line, with its fuzz rounds.
    for expected in (
        "BitAllocation",
        "load_config",
        "load_dataset",
        "capsq data",
        "load_checkpoint",
        "capsq eval",
        "check_output_folder",
        "capsq run",
        "capsq quantize",
        "export_onnx path",
        "export_onnx examples",
        "export_onnx opset",
        "job.run",
        "fuzz: IDX reader (any bytes)",
        "fuzz: load_config (NNCF 2.x layout)",
        "fuzz: capsq run / quantize options",
    ):
        assert expected in sources, expected
    for row in rows:
        counts = [int(cell) for cell in row["counts"].split(" | ")]
        assert sum(counts) == int(row["cases"]) and counts[3] == 0, row.group(0)
        if row["source"].startswith("fuzz: "):
            assert int(row["cases"]) == 3
    # Refusals dominate, and valid inputs are accepted: the classification is not one-sided.
    total = next(line for line in lines if line.startswith("| **total**"))
    cases, clean, detected, accepted, crash = (int(cell) for cell in re.findall(r"\*\*(\d+)\*\*", total))
    assert crash == 0 and cases == clean + detected + accepted and clean > 250 and accepted >= 20
    assert f"{cases} cases, 0 crashes" in completed.stdout
    # Corrupted copies were made in a temporary folder, never in the cache they were copied from.
    assert cache_state(cache_dir()) == before
    assert list(tmp_path.iterdir()) == []


def test_a_negative_number_of_rounds_is_refused_on_one_line():
    command = [sys.executable, str(ROOT / "benchmarks" / "reliability.py"), "--fuzz-rounds", "-1"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr.strip().splitlines()[-1] == (
        "reliability.py: error: argument --fuzz-rounds: expected a number of rounds >= 0 (0: no fuzzing), "
        "got '-1'"
    )
