"""The C and C++ programs of docs/ (every ```c and ```cpp block), compiled against the onnxruntime headers
the build used and the onnxruntime library of the Python wheel, classify an image exactly as Python does."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
from tiny_capsnet import tiny_capsnet, tiny_images

from capsnet_nncf_plugin.export import export_onnx
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.runtime import InferenceSession, library_path

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```(c|cpp)\n(.*?)^```", re.DOTALL | re.MULTILINE)
COMPILERS = {
    "c": (shutil.which("cc") or shutil.which("gcc"), []),
    "cpp": (shutil.which("c++"), ["-std=c++17"]),
}


def examples():
    for path in sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text()
        for match in BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 1
            yield pytest.param(match.group(1), match.group(2), id=f"{path.name}:{line}")


def ort_include_dir() -> Path | None:
    """The headers the package build used: ``$ORT_INCLUDE_DIR``, the build's fetched copy, or the system's."""
    candidates = [os.environ.get("ORT_INCLUDE_DIR", "")]
    candidates += sorted(map(str, ROOT.glob("build/*/_ort_headers/root/usr/include/onnxruntime")))
    candidates.append("/usr/include/onnxruntime")
    return next((Path(c) for c in candidates if c and (Path(c) / "onnxruntime_c_api.h").is_file()), None)


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory) -> Path:
    """The wheel's onnxruntime library under the names a ``-lonnxruntime`` link and its loader look for."""
    capi = Path(onnxruntime.__file__).parent / "capi"
    library = next(iter(sorted(capi.glob("libonnxruntime.so.*"))))
    directory = tmp_path_factory.mktemp("onnxruntime")
    for name in ("libonnxruntime.so", "libonnxruntime.so.1"):
        (directory / name).symlink_to(library)
    return directory


def compile_example(language: str, source: str, runtime_dir: Path, directory: Path) -> Path:
    compiler, flags = COMPILERS[language]
    include = ort_include_dir()
    if compiler is None or include is None:
        pytest.skip("needs a C/C++ compiler and the onnxruntime headers (run `make setup` first)")
    program = directory / ("classify.c" if language == "c" else "classify.cc")
    program.write_text(source)
    binary = directory / "classify"
    command = [compiler, *flags, "-Wall", "-Werror", str(program), f"-I{include}", f"-L{runtime_dir}"]
    command += ["-lonnxruntime", f"-Wl,-rpath,{runtime_dir}", "-o", str(binary)]
    compiled = subprocess.run(command, capture_output=True, text=True, check=False)
    assert compiled.returncode == 0, compiled.stderr
    return binary


def test_docs_hold_a_c_and_a_cpp_program():
    assert sorted({language for language, *_ in (p.values for p in examples())}) == ["c", "cpp"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    images = tiny_images(32)
    quantized = quantize_fx(tiny_capsnet(), [images[:16], images[16:]])
    path = export_onnx(quantized, images[:2], tmp_path_factory.mktemp("model") / "tiny.onnx").path
    image = tiny_images(1, seed=11)
    session = InferenceSession(str(path))
    expected = session.run(None, {session.get_inputs()[0].name: image.numpy()})[0][0]
    return path, image.to(torch.uint8).numpy().tobytes(), expected


@pytest.mark.parametrize(("language", "source"), list(examples()))
def test_documented_program_classifies_like_python(language, source, exported, runtime_dir, tmp_path):
    binary = compile_example(language, source, runtime_dir, tmp_path)
    model, pixels, expected = exported
    completed = subprocess.run(
        [str(binary), library_path(), str(model)], input=pixels, capture_output=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr.decode()
    *scores, last = completed.stdout.decode().split("\n")[:-1]
    np.testing.assert_array_equal(np.array(scores, dtype=np.float32), expected)
    assert last == f"class {int(expected.argmax())}"


@pytest.mark.parametrize(("language", "source"), list(examples()))
def test_documented_program_reports_a_missing_library(language, source, exported, runtime_dir, tmp_path):
    binary = compile_example(language, source, runtime_dir, tmp_path)
    completed = subprocess.run(
        [str(binary), str(tmp_path / "missing.so"), str(exported[0])],
        input=exported[1],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "onnxruntime:" in completed.stderr.decode() and "missing.so" in completed.stderr.decode()
