"""The benchmark scripts' command lines: bad input is one line naming the fix and exit status 2, like
`capsq` (the full-test-set runs themselves are benchmarks, not tests)."""

import subprocess
import sys
from pathlib import Path

import pytest

from capsnet_nncf_plugin.core import BitAllocation
from capsnet_nncf_plugin.models import available_pretrained

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_script(script: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    "script",
    [
        "ptq_uniform.py",
        "ort_parity.py",
        "nncf_flow.py",
        "allocation.py",
        "weight_rounding.py",
        "routing_thresholds.py",
        "validation_slices.py",
        "selection_bias.py",
        "candidate_cost.py",
    ],
)
def test_an_unknown_zoo_model_is_one_line_naming_the_zoo(script, tmp_path):
    arguments = ["--model", "zoo:nope"]
    if script == "validation_slices.py":  # it also asks for an allocation, read before the model
        allocation = BitAllocation.uniform(["conv"])
        allocation.save(tmp_path / "allocation.json")
        arguments += ["--allocation", str(tmp_path / "allocation.json")]
    completed = run_script(script, *arguments)
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1] == (
        f"{script}: error: no zoo model named 'nope'; available: {', '.join(available_pretrained())} "
        "(see `capsq zoo list`)"
    )


def test_zoo_accuracy_help_names_the_zoo_models():
    completed = run_script("zoo_accuracy.py", "--help")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "shallowcaps-mnist" in completed.stdout and "shallowcaps-fmnist" in completed.stdout


def test_zoo_accuracy_refuses_an_unknown_model_with_the_zoo_listed_and_nothing_evaluated():
    completed = run_script("zoo_accuracy.py", "shallowcaps-cifar10")
    assert completed.returncode == 2
    assert "not in the zoo: shallowcaps-cifar10" in completed.stderr
    assert "shallowcaps-mnist" in completed.stderr and "capsq zoo list" in completed.stderr
    assert completed.stdout == ""


def test_routing_thresholds_refuse_a_threshold_that_is_no_number():
    completed = run_script("routing_thresholds.py", "--thresholds", "20,loud")
    assert completed.returncode == 2
    assert "'20,loud' is not a comma-separated list of dB values" in completed.stderr.strip().splitlines()[-1]
