"""The integer test pass of `capsq quantize`: onnxruntime's accuracy is the torch integer model's."""

import logging
from types import SimpleNamespace

import pytest
import torch

from capsnet_nncf_plugin.allocation.native_kernels import native_kernels
from capsnet_nncf_plugin.data.image_dataset import ImageDataset
from capsnet_nncf_plugin.errors import ExportError
from capsnet_nncf_plugin.evaluation import evaluate_accuracy
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.job import measurement
from capsnet_nncf_plugin.job.measurement import integer_test_accuracy
from capsnet_nncf_plugin.runtime.library import NativeLibraryNotFoundError
from tests.tiny_capsnet import tiny_capsnet, tiny_images


@pytest.fixture(scope="module")
def quantized_and_test():
    model = tiny_capsnet()
    images = tiny_images(200, seed=9)
    with torch.no_grad():
        labels = model(images).argmax(dim=1)
    labels[::5] = (labels[::5] + 1) % 3
    test = ImageDataset(images.to(torch.uint8), labels, name="tiny", split="test", num_classes=3)
    inputs = SimpleNamespace(example=tiny_images(2), test=test)  # what a job's inputs give the test pass
    return quantize_fx(model, [tiny_images(32, seed=2)]), inputs


def test_onnxruntime_measures_what_the_torch_integer_model_measures(quantized_and_test, tmp_path):
    quantized, inputs = quantized_and_test
    accuracy, runtime = integer_test_accuracy(quantized, inputs, tmp_path / "m.onnx", None, False)
    with native_kernels():
        expected = evaluate_accuracy(quantized, inputs.test)
    assert runtime == "onnxruntime" and accuracy == expected and (tmp_path / "m.onnx").exists()
    assert 0 < accuracy < 100  # labels the integer model both gets right and wrong


@pytest.mark.parametrize("error", [ExportError("no export form"), NativeLibraryNotFoundError("no library")])
def test_without_an_export_or_the_library_torch_measures_it(
    quantized_and_test, tmp_path, monkeypatch, caplog, error
):
    quantized, inputs = quantized_and_test

    def fail(*arguments, **keywords):
        raise error

    monkeypatch.setattr(measurement, "export_onnx", fail)
    with caplog.at_level(logging.WARNING):
        accuracy, runtime = integer_test_accuracy(quantized, inputs, tmp_path / "m.onnx", None, False)
    with native_kernels():
        assert runtime == "torch" and accuracy == evaluate_accuracy(quantized, inputs.test)
    assert "integer test in torch, not onnxruntime" in caplog.text and str(error) in caplog.text
