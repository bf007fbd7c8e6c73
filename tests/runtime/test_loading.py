"""Loading the library: its exported symbols, finding it, registering it into session options, the output
types onnxruntime needs, and the errors when something is missing or wrong."""

import os
import shutil
import subprocess

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from capsnet_nncf_plugin.errors import CapsqError
from capsnet_nncf_plugin.runtime import (
    LIBRARY_ENV,
    LIBRARY_FILE,
    InferenceSession,
    NativeLibraryNotFoundError,
    declare_output_types,
    library,
    library_path,
    session_options,
)
from capsnet_nncf_plugin.runtime.session import (
    REGISTERED_BY_CALLER,
    REGISTERED_CONFIG_KEY,
    DuplicateRegistrationError,
)

SQUASH_INPUT = np.array([[3, 4], [-3, 4]], dtype=np.int16)


def squash_then_identity(
    bits_out: int = 8, declare: bool = False, input_type: int = TensorProto.INT16
) -> onnx.ModelProto:
    """IntSquash feeding an Identity: the squash output is an intermediate value without a declared type."""
    output_type = TensorProto.INT8 if bits_out <= 8 else TensorProto.INT16
    graph = helper.make_graph(
        [
            helper.make_node("IntSquash", ["x"], ["v"], domain="capsnet", exponent_in=0, bits_out=bits_out),
            helper.make_node("Identity", ["v"], ["y"]),
        ],
        "squash",
        [helper.make_tensor_value_info("x", input_type, ["N", 2])],
        [helper.make_tensor_value_info("y", output_type, ["N", 2])],
        value_info=[helper.make_tensor_value_info("v", output_type, None)] if declare else [],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("capsnet", 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs binutils' nm")
def test_library_exports_only_register_custom_ops(native_library):
    defined = subprocess.run(
        ["nm", "-D", "--defined-only", str(native_library)], capture_output=True, text=True, check=True
    ).stdout
    assert [line.split()[-1] for line in defined.splitlines() if line.strip()] == ["RegisterCustomOps"]
    # Header-only use of onnxruntime: no onnxruntime symbol is imported, and no onnxruntime library needed.
    undefined = subprocess.run(
        ["nm", "-D", "--undefined-only", str(native_library)], capture_output=True, text=True, check=True
    ).stdout
    assert "Ort" not in undefined
    needed = subprocess.run(["ldd", str(native_library)], capture_output=True, text=True, check=False).stdout
    assert "onnxruntime" not in needed


def test_library_path_is_the_installed_file(native_library):
    assert native_library.name == LIBRARY_FILE
    assert native_library.is_file()
    assert native_library.is_absolute()


def test_missing_library_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.delenv(LIBRARY_ENV, raising=False)
    monkeypatch.setattr(library, "_candidate_paths", lambda: iter([tmp_path / LIBRARY_FILE]))
    with pytest.raises(NativeLibraryNotFoundError, match=r"pip install -e \.") as raised:
        library_path()
    assert str(tmp_path) in str(raised.value)
    assert isinstance(raised.value, FileNotFoundError)
    # session_options and InferenceSession fail the same way, before onnxruntime sees anything.
    with pytest.raises(NativeLibraryNotFoundError):
        session_options()
    with pytest.raises(NativeLibraryNotFoundError):
        InferenceSession(squash_then_identity().SerializeToString())


def test_environment_override(monkeypatch, tmp_path, native_library):
    monkeypatch.setenv(LIBRARY_ENV, str(native_library))
    assert library_path() == native_library.resolve()
    monkeypatch.setenv(LIBRARY_ENV, str(tmp_path / "nothing.so"))
    with pytest.raises(NativeLibraryNotFoundError, match=LIBRARY_ENV):
        library_path()


def test_inference_session_registers_into_user_options(native_library):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = InferenceSession(squash_then_identity(), options)
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert session.run(None, {"x": SQUASH_INPUT})[0].tolist() == [[74, 98], [-74, 98]]
    # The user's options now carry the library: plain onnxruntime sessions with them run the op too, and
    # registering again (explicitly or through another InferenceSession) is a no-op, not a duplicate.
    assert options.get_session_config_entry(REGISTERED_CONFIG_KEY) == str(native_library)
    assert session_options(options) is options
    declared = squash_then_identity(declare=True).SerializeToString()
    plain = onnxruntime.InferenceSession(declared, options, providers=["CPUExecutionProvider"])
    assert plain.run(None, {"x": SQUASH_INPUT})[0].tolist() == [[74, 98], [-74, 98]]
    InferenceSession(declared, options)


def test_model_sources(tmp_path, native_library):
    model = squash_then_identity(bits_out=12)
    path = tmp_path / "squash.onnx"
    onnx.save(model, path)
    for source in (model, model.SerializeToString(), path, str(path)):
        result = InferenceSession(source).run(None, {"x": SQUASH_INPUT})[0]
        assert result.dtype == np.int16
        assert result.tolist() == [[1182, 1575], [-1182, 1575]]  # round([3, 4] * 5 / 26 * 2^11)


def test_undeclared_output_types_need_declare_output_types(native_library):
    # onnxruntime cannot infer the attribute-dependent output dtype of a custom op...
    options = session_options()
    with pytest.raises(Exception, match="type inference failed"):
        onnxruntime.InferenceSession(
            squash_then_identity().SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    # ...so declare_output_types adds it (InferenceSession does this itself).
    model = squash_then_identity()
    assert declare_output_types(model) is True
    assert [(value.name, value.type.tensor_type.elem_type) for value in model.graph.value_info] == [
        ("v", TensorProto.INT8)
    ]
    assert declare_output_types(model) is False
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    assert session.run(None, {"x": SQUASH_INPUT})[0].tolist() == [[74, 98], [-74, 98]]


def test_wrongly_declared_output_type_is_an_error(native_library):
    model = squash_then_identity(bits_out=12, declare=True)
    model.graph.value_info[0].type.tensor_type.elem_type = TensorProto.INT8
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.INT8
    with pytest.raises(Exception, match=r"declared as int8 .* bits_out=12 makes it int16"):
        InferenceSession(model)


def test_runtime_errors_are_statuses_naming_the_problem(native_library):
    session = InferenceSession(squash_then_identity(input_type=TensorProto.INT32))
    with pytest.raises(
        Exception, match=r"IntSquash: s holds values in -32769\.\.4, outside the signed 16-bit"
    ):
        session.run(None, {"x": np.array([[-32769, 4]], dtype=np.int32)})
    assert session.run(None, {"x": np.zeros((0, 2), dtype=np.int32)})[0].shape == (0, 2)
    # The session stays usable after an error.
    assert session.run(None, {"x": np.array([[3, 4]], dtype=np.int32)})[0].tolist() == [[74, 98]]


def test_newest_of_several_copies_wins(monkeypatch, tmp_path):
    # An editable install with an in-place build as well: the library built last matches the sources.
    monkeypatch.delenv(LIBRARY_ENV, raising=False)
    older, newer = tmp_path / "a" / LIBRARY_FILE, tmp_path / "b" / LIBRARY_FILE
    for index, path in enumerate((older, newer)):
        path.parent.mkdir()
        path.write_bytes(b"")
        os.utime(path, (1_000_000 + index, 1_000_000 + index))
    monkeypatch.setattr(library, "_candidate_paths", lambda: iter([older, tmp_path / "missing", newer]))
    assert library_path() == newer.resolve()
    os.utime(older, (2_000_000, 2_000_000))
    assert library_path() == older.resolve()


# --- a library registered by hand, as docs/runtime.md shows ------------------------------------------------


def test_options_registered_by_hand_are_not_registered_again(native_library):
    options = onnxruntime.SessionOptions()
    options.register_custom_ops_library(str(library_path()))
    # Registering once more is what onnxruntime refuses: every session creation fails.
    options_twice = onnxruntime.SessionOptions()
    options_twice.register_custom_ops_library(str(library_path()))
    options_twice.register_custom_ops_library(str(library_path()))
    with pytest.raises(Exception, match="Domain already set in registry"):
        onnxruntime.InferenceSession(
            squash_then_identity(declare=True).SerializeToString(),
            options_twice,
            providers=["CPUExecutionProvider"],
        )
    # InferenceSession and session_options find the hand registration and only record it.
    session = InferenceSession(squash_then_identity(), options)
    assert session.run(None, {"x": SQUASH_INPUT})[0].tolist() == [[74, 98], [-74, 98]]
    assert options.get_session_config_entry(REGISTERED_CONFIG_KEY) == REGISTERED_BY_CALLER
    assert session_options(options) is options
    again = InferenceSession(squash_then_identity(bits_out=12), options)
    assert again.run(None, {"x": SQUASH_INPUT})[0].tolist() == [[1182, 1575], [-1182, 1575]]


def test_the_registration_probe_leaves_no_files_and_restores_the_options(
    native_library, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # profiles are written to the working directory
    optimized = tmp_path / "optimized.onnx"
    for by_hand in (True, False):
        options = onnxruntime.SessionOptions()
        if by_hand:
            options.register_custom_ops_library(str(library_path()))
        options.enable_profiling = True
        options.optimized_model_filepath = str(optimized)
        assert session_options(options) is options
        assert options.enable_profiling and options.optimized_model_filepath == str(optimized)
        assert list(tmp_path.iterdir()) == []
        expected = REGISTERED_BY_CALLER if by_hand else str(native_library)
        assert options.get_session_config_entry(REGISTERED_CONFIG_KEY) == expected


def test_a_second_hand_registration_after_ours_is_one_clear_error(native_library):
    options = session_options(onnxruntime.SessionOptions())
    options.register_custom_ops_library(str(library_path()))
    with pytest.raises(DuplicateRegistrationError) as raised:
        InferenceSession(squash_then_identity(), options)
    message = str(raised.value)
    assert "\n" not in message and isinstance(raised.value, CapsqError)
    assert message.startswith("these onnxruntime SessionOptions register the capsnet custom-op library twice")
    assert message.endswith("or pass new options")
