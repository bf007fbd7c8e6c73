"""The C++ unit test of the integer arithmetic (csrc/tests/integer_ops_test.cc: the worked examples of
docs/integer-ops.md, including the softmax one, which no ONNX op exposes), compiled with AddressSanitizer
and UndefinedBehaviorSanitizer. Needs no onnxruntime headers; skipped without a C++ compiler."""

import shutil
import subprocess
from pathlib import Path

import pytest

CSRC = Path(__file__).resolve().parents[2] / "csrc"
COMPILER = shutil.which("g++") or shutil.which("clang++")


@pytest.mark.skipif(
    COMPILER is None or not CSRC.is_dir(), reason="needs a C++ compiler and a source checkout"
)
def test_integer_ops_unit_test_under_sanitizers(tmp_path):
    binary = tmp_path / "integer_ops_test"
    sources = [CSRC / "tests" / "integer_ops_test.cc", *sorted((CSRC / "capsnet_ops").glob("*.cc"))]
    flags = ["-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror"]
    sanitizers = [
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=undefined",
        "-fno-omit-frame-pointer",
    ]
    compiled = subprocess.run(
        [COMPILER, *flags, *sanitizers, *map(str, sources), "-o", str(binary)],
        capture_output=True,
        text=True,
        check=False,
    )
    if compiled.returncode != 0 and "sanitize" in compiled.stderr:
        pytest.skip(f"the compiler has no sanitizer runtime: {compiled.stderr[-300:]}")
    assert compiled.returncode == 0, compiled.stderr
    completed = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "all integer-op checks passed" in completed.stdout
