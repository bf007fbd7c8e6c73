"""benchmarks/weight_rounding.py end to end on a few images: one row per weight width, three variants."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

from capsnet_nncf_plugin.data import is_fetched

ROOT = Path(__file__).resolve().parents[2]


def test_weight_rounding_benchmark_prints_every_variant_per_width(tmp_path):
    if not is_fetched("mnist"):
        pytest.skip("needs MNIST: run `capsq data fetch mnist`")
    command = [sys.executable, str(ROOT / "benchmarks" / "weight_rounding.py"), "--model"]
    command += ["zoo:shallowcaps-mnist", "--limit", "64", "--calibration", "128", "--bits", "8", "2"]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    assert "(64 images" in lines[0] and lines[2].split() == ["weights"] + ["nearest", "corrected", "gptq"] * 3
    rows = {int(line.split()[0]): [float(cell) for cell in line.split()[1:]] for line in lines[3:]}
    assert sorted(rows) == [2, 8]
    for cells in rows.values():
        accuracies, sqnrs, agreements = cells[0:3], cells[3:6], cells[6:9]
        assert all(0.0 <= value <= 100.0 for value in accuracies + agreements)
        assert all(math.isfinite(value) for value in sqnrs)
    # 8-bit weights stay far closer to FP32 than 2-bit ones, whatever the rounding.
    assert all(rows[8][3 + i] > rows[2][3 + i] for i in range(3))
    # At 2 bits, GPTQ's error feedback keeps the class scores closer to FP32 than rounding to nearest.
    assert rows[2][5] > rows[2][3]
