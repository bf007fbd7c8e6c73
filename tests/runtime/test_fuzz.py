"""Robustness: random shapes, dtypes, attributes and values never crash the process; every case either fails
with an onnxruntime error or matches the torch reference (the worker checks both, in a child process)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import capsnet_nncf_plugin

WORKER = Path(__file__).with_name("fuzz_worker.py")
PACKAGE_ROOT = Path(capsnet_nncf_plugin.__file__).resolve().parents[1]


def run_worker(seed: int, cases: int, seconds: float, library: Path) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PACKAGE_ROOT), environment.get("PYTHONPATH")])
    )
    environment["CAPSNET_ORT_OPS_LIBRARY"] = str(library)
    environment["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        [sys.executable, str(WORKER), str(seed), str(cases), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        env=environment,
        check=False,
    )


def test_fuzz_never_crashes_and_agrees_with_the_reference(native_library):
    completed = run_worker(seed=20240, cases=1500, seconds=10.0, library=native_library)
    assert completed.returncode == 0, (
        f"fuzz worker exited with {completed.returncode} (negative: killed by a signal, i.e. a crash)\n"
        f"stdout: {completed.stdout[-3000:]}\nstderr: {completed.stderr[-3000:]}"
    )
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary["mismatches"] == 0, summary["first_mismatches"]
    # Enough cases ran, and both outcomes are well represented.
    assert summary["cases"] >= 300, summary
    assert summary["results"] >= 0.1 * summary["cases"], summary
    assert summary["errors"] >= 0.1 * summary["cases"], summary
