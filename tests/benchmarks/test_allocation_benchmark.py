"""benchmarks/allocation.py end to end on a small budget: it runs, prints its table, writes the Markdown."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_allocation_benchmark_writes_the_reproduction_table(untrained_mnist_checkpoint, tmp_path):
    markdown = tmp_path / "results.md"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "allocation.py"),
        "--model",
        str(untrained_mnist_checkpoint),
    ]
    command += ["--method", "uniform-8", "--tolerance", "100", "--calibration", "128"]
    command += ["--criterion", "accuracy"]
    command += ["--validation-limit", "100", "--limit", "100", "--markdown", str(markdown)]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "uniform-8" in completed.stdout
    table = markdown.read_text()
    row = next(line for line in table.splitlines() if "| uniform-8 |" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # 8-bit everywhere: 4x on weights and activations; torch and onnxruntime agree on every image.
    assert cells[6:8] == ["4.00", "4.00"]
    assert cells[3] == cells[4]
    assert "Search criterion: `accuracy`" in table
    assert "Published figures" in table
