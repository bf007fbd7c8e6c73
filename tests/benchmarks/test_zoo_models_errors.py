"""The benchmark scripts report a bad --model as one line and exit status 2, like `capsq`."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["ptq_uniform.py", "ort_parity.py", "nncf_flow.py", "allocation.py"])
def test_an_unknown_zoo_model_is_one_line_naming_the_zoo(script):
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--model", "zoo:nope"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1] == (
        f"{script}: error: no zoo model named 'nope'; available: shallowcaps-fmnist, shallowcaps-mnist "
        "(see `capsq zoo list`)"
    )
