"""benchmarks/bias_correction.py end to end on a few images: one row per weight width, both variants."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

from capsnet_nncf_plugin.data import is_fetched

ROOT = Path(__file__).resolve().parents[2]


def test_bias_correction_benchmark_prints_both_variants_per_width(tmp_path):
    if not is_fetched("mnist"):
        pytest.skip("needs MNIST: run `capsq data fetch mnist`")
    command = [sys.executable, str(ROOT / "benchmarks" / "bias_correction.py"), "--model"]
    command += ["zoo:shallowcaps-mnist", "--limit", "64", "--calibration", "128", "--bits", "8", "2"]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    assert "(64 images" in lines[0] and lines[1].split()[0] == "weights"
    rows = {int(line.split()[0]): [float(cell) for cell in line.split()[1:]] for line in lines[2:]}
    assert sorted(rows) == [2, 8]
    for accuracy, accuracy_c, sqnr, sqnr_c, agree, agree_c in rows.values():
        assert all(0.0 <= value <= 100.0 for value in (accuracy, accuracy_c, agree, agree_c))
        assert math.isfinite(sqnr) and math.isfinite(sqnr_c)
    # 8-bit weights stay far closer to FP32 than 2-bit ones, corrected or not.
    assert rows[8][2] > rows[2][2] and rows[8][3] > rows[2][3]
