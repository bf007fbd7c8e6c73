"""benchmarks/ort_parity.py end to end on a few images: both optimisation levels, torch == onnxruntime."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ort_parity_benchmark_reports_bit_identical_scores_at_both_levels(
    untrained_mnist_checkpoint, tmp_path
):
    command = [sys.executable, str(ROOT / "benchmarks" / "ort_parity.py"), "--model"]
    command += [str(untrained_mnist_checkpoint), "--limit", "64", "--calibration", "128"]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = {line.split()[1]: line.split()[2:] for line in completed.stdout.splitlines()[1:]}
    assert set(rows) == {"disabled", "all"}
    for level, (torch_accuracy, ort_accuracy, identical, same_top1, max_difference) in rows.items():
        assert (torch_accuracy, identical, same_top1) == (ort_accuracy, "100.00", "100.00"), level
        assert float(max_difference) == 0.0
