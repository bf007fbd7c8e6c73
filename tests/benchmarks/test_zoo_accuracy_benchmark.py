"""benchmarks/zoo_accuracy.py: its command line (the full-test-set run itself is a benchmark, not a test)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "zoo_accuracy.py"


def run_script(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=300, check=False
    )


def test_help_names_the_zoo_models():
    completed = run_script("--help")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "shallowcaps-mnist" in completed.stdout and "shallowcaps-fmnist" in completed.stdout


def test_an_unknown_model_is_refused_with_the_zoo_listed_and_nothing_evaluated():
    completed = run_script("shallowcaps-cifar10")
    assert completed.returncode == 2
    assert "not in the zoo: shallowcaps-cifar10" in completed.stderr
    assert "shallowcaps-mnist" in completed.stderr and "capsq zoo list" in completed.stderr
    assert completed.stdout == ""
