"""export_onnx refuses what cannot work before the slow export, in one line naming the fix: destinations it
cannot write (named as requested, never as the temporary ``.part`` file), example inputs of the wrong dtype
or shape, opsets the export cannot use."""

import os
import warnings
from pathlib import Path

import pytest
import torch
from tiny_capsnet import tiny_capsnet, tiny_images

from capsnet_nncf_plugin.atomic_file import TEMPORARY_SUFFIX
from capsnet_nncf_plugin.errors import CapsqError, ExportError, ExportInputError, run_reporting_user_errors
from capsnet_nncf_plugin.export import export_onnx, onnx_export
from capsnet_nncf_plugin.fx import quantize_fx

FIX = "pass the path of a .onnx file in a folder where you may write"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def quantized():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_fx(tiny_capsnet(), [tiny_images(16)])


@pytest.fixture
def no_export(monkeypatch):
    """Every case below must be refused before the export form is built (the slow part starts there)."""

    def started(*args, **kwargs):
        raise AssertionError("the export started before the arguments were checked")

    monkeypatch.setattr(onnx_export, "export_form", started)


def refused(quantized, *, examples=None, path, opset=21) -> str:
    examples = tiny_images(2) if examples is None else examples
    with pytest.raises(ExportInputError) as raised:
        export_onnx(quantized, examples, path, opset=opset)
    message = str(raised.value)
    assert "\n" not in message and TEMPORARY_SUFFIX not in message, message
    assert isinstance(raised.value, CapsqError) and isinstance(raised.value, ValueError)
    return message


def test_a_directory_is_refused_with_a_file_path_to_use(quantized, no_export, tmp_path):
    message = refused(quantized, path=tmp_path)
    assert message == (
        f"cannot write the ONNX model to {tmp_path}: it is a directory; pass a file path such as "
        f"{tmp_path / 'model.onnx'}"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_fifo_and_a_device_are_not_regular_files(quantized, no_export, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path in (fifo, Path(os.devnull)):
        message = refused(quantized, path=path)
        assert message == (
            f"cannot write the ONNX model to {path}: it exists and is not a regular file (a device, a pipe "
            f"or a socket); {FIX}"
        )


def test_a_parent_that_is_a_file(quantized, no_export, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file")
    message = refused(quantized, path=blocker / "models" / "m.onnx")
    assert message == (
        f"cannot write the ONNX model to {blocker / 'models' / 'm.onnx'}: {blocker} is a file, so no folder "
        f"can be made under it; {FIX}"
    )


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_path_under_proc_is_named_as_requested(quantized, no_export):
    # /proc is a writable-looking directory to root, but creates no files: the probe file finds out.
    message = refused(quantized, path="/proc/capsq-model.onnx")
    assert message.startswith("cannot write the ONNX model to /proc/capsq-model.onnx: /proc does not ")
    assert message.endswith(FIX)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder(quantized, no_export, tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        message = refused(quantized, path=folder / "m.onnx")
    finally:
        folder.chmod(0o755)
    assert message == f"cannot write the ONNX model to {folder / 'm.onnx'}: {folder} is not writable; {FIX}"


def test_an_unwritable_ancestor_of_a_missing_folder(quantized, no_export, tmp_path, monkeypatch):
    # The folders to create would go under tmp_path; permissions say no (as they do to a non-root user).
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path and real_access(path, mode))
    message = refused(quantized, path=tmp_path / "new" / "m.onnx")
    assert (
        message
        == f"cannot write the ONNX model to {tmp_path / 'new' / 'm.onnx'}: {tmp_path} is not writable; {FIX}"
    )
    assert not (tmp_path / "new").exists()


def test_names_too_long_and_nul_characters(quantized, no_export, tmp_path):
    long_name = tmp_path / ("m" * 300 + ".onnx")
    assert (
        refused(quantized, path=long_name)
        == f"cannot write the ONNX model to {long_name}: File name too long; {FIX}"
    )
    message = refused(quantized, path=f"{tmp_path}/a\0b.onnx")
    assert message.startswith(f"cannot write the ONNX model to '{tmp_path}/a\\x00b.onnx': ")
    assert "embedded null" in message
    assert refused(quantized, path=5) == f"path must be a file path (str or os.PathLike), got int; {FIX}"


def test_a_failed_write_names_the_requested_path_not_the_temporary_file(quantized, tmp_path, monkeypatch):
    destination = tmp_path / "m.onnx"

    def full_disk(path, payload):
        temporary = Path(path).with_name(f".{Path(path).name}.x1y2{TEMPORARY_SUFFIX}")
        raise OSError(28, "No space left on device", str(temporary))

    monkeypatch.setattr(onnx_export, "write_bytes_atomically", full_disk)
    with pytest.raises(ExportError) as raised:
        export_onnx(quantized, tiny_images(2), destination)
    message = str(raised.value)
    assert message.startswith(
        f"cannot write the ONNX model to {destination} (No space left on device); {FIX}"
    )
    assert TEMPORARY_SUFFIX not in message and "\n" not in message
    assert message.endswith(" bytes")  # with room for the file's size
    assert list(tmp_path.iterdir()) == []


def test_a_missing_parent_folder_is_created(quantized, tmp_path):
    exported = export_onnx(quantized, tiny_images(2), tmp_path / "new" / "deeper" / "m.onnx")
    assert exported.path.is_file() and sorted(p.name for p in exported.path.parent.iterdir()) == ["m.onnx"]


@pytest.mark.parametrize(
    ("shape", "reason"),
    [((2, 1, 28, 28), "RuntimeError: einsum()"), ((2, 3, 16, 16), "RuntimeError: Given groups=1")],
    ids=["28x28-for-16x16", "3-channels-for-1"],
)
def test_examples_that_do_not_fit_the_model_name_their_shape(
    quantized, tmp_path, capsys, monkeypatch, shape, reason
):
    def translated(*args, **kwargs):
        raise AssertionError("the examples reached torch's exporter")

    monkeypatch.setattr(torch.onnx, "export", translated)
    images = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(0)).float()
    message = refused(quantized, examples=images, path=tmp_path / "m.onnx")
    assert message.startswith(f"the model fails on the example inputs of shape {list(shape)} ({reason}")
    assert message.endswith(
        "they do not fit the model; pass images shaped like the ones it was built and calibrated for, "
        "e.g. images[:2] of its dataset"
    )
    # Neither a traceback nor torch.fx's listing of the generated code reaches the terminal.
    assert capsys.readouterr().err == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float64, torch.float16, torch.int64])
def test_examples_must_be_float32_raw_pixels(quantized, no_export, tmp_path, dtype):
    message = refused(quantized, examples=tiny_images(2).to(dtype), path=tmp_path / "m.onnx")
    assert message == (
        f"example inputs must be float32 (raw pixels as float 0..255), got {dtype}; pass images.float()"
    )


def test_examples_that_are_no_tensors_or_not_finite(quantized, no_export, tmp_path):
    path = tmp_path / "m.onnx"
    assert refused(quantized, examples=tiny_images(2).numpy(), path=path) == (
        "example_inputs must be a tensor or a tuple of tensors, got ndarray; pass a batch of images, "
        "e.g. images[:2]"
    )
    images = tiny_images(2)
    images[1, 0, 3, 3] = float("nan")
    assert refused(quantized, examples=images, path=path) == (
        "the example inputs hold NaN or infinite values; pass real images (raw pixels as float 0..255)"
    )


@pytest.mark.parametrize("opset", [7, 17, 20])
def test_an_old_opset_names_what_the_export_needs_whatever_the_weights(quantized, no_export, tmp_path, opset):
    # 8-bit weights: no INT4 anywhere, and opset 21 is still needed (int16/int32 per-axis DequantizeLinear).
    message = refused(quantized, path=tmp_path / "m.onnx", opset=opset)
    assert message == (
        f"opset {opset} is too old: the export uses per-axis DequantizeLinear on int16/int32 codes and INT4 "
        "weights, which need opset >= 21; pass opset=21"
    )


def test_an_opset_newer_than_onnx_or_not_an_integer(quantized, no_export, tmp_path):
    import onnx

    newest = onnx.defs.onnx_opset_version()
    message = refused(quantized, path=tmp_path / "m.onnx", opset=newest + 1)
    assert (
        message
        == f"opset {newest + 1} is newer than the installed onnx knows (at most {newest}); pass opset=21"
    )
    assert (
        refused(quantized, path=tmp_path / "m.onnx", opset="21")
        == "opset must be an integer, got '21'; pass opset=21"
    )


def test_the_command_line_wrapper_prints_one_line(quantized, no_export, tmp_path, capsys):
    status = run_reporting_user_errors(lambda: export_onnx(quantized, tiny_images(2), tmp_path), "capsq run")
    assert status == 2
    err = capsys.readouterr().err
    assert err == (
        f"capsq run: error: cannot write the ONNX model to {tmp_path}: it is a directory; pass a file path "
        f"such as {tmp_path / 'model.onnx'}\n"
    )
