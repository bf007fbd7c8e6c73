"""Seven CapsNets written the way public code writes them, trained on MNIST: captured with no edit, quantized
at 8/8/8 by both flows within 0.10 pp on 2,000 test images, squash and routing as integer ops, exported
and bit-identical in onnxruntime on 500 images. One more, whose routing normalises over the input
capsules, keeps that routing float, with a warning, and its function."""

import os
import warnings

import pytest
import torch
from capture.user_models import STYLES, UNSUPPORTED_STYLES, load_trained

from capsnet_nncf_plugin.capture import CaptureWarning, capture_with_report
from capsnet_nncf_plugin.data import is_fetched, load_dataset
from capsnet_nncf_plugin.evaluation import compare_classifiers, evaluate_accuracy, iterate_batches
from capsnet_nncf_plugin.export import export_onnx
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.nncf import quantize_with_report
from capsnet_nncf_plugin.quantized import QuantizedRoutingLayer, QuantizedSquashLayer, quantization_points
from capsnet_nncf_plugin.runtime import InferenceSession, OnnxClassifier

TEST_IMAGES = 2000
PARITY_IMAGES = 500
TOLERANCE_PP = 0.10


@pytest.fixture(scope="module")
def mnist():
    if not is_fetched("mnist"):
        if os.environ.get("CI"):
            pytest.fail("MNIST is missing in CI; `make setup` fetches it")
        pytest.skip("needs MNIST: run `capsq data fetch mnist`")
    validation, test = load_dataset("mnist", "val"), load_dataset("mnist", "test")
    calibration = [images for images, _ in iterate_batches(validation, 128, 512)]
    return calibration, test


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _routing_points(model):
    return [point for point in quantization_points(model) if point.kind == "routing"]


@pytest.mark.parametrize("style", list(STYLES))
def test_a_users_capsnet_quantizes_in_both_flows_with_integer_routing(style, mnist, tmp_path):
    calibration, test = mnist
    model = load_trained(style)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaptureWarning)  # nothing of a supported style stays float
        captured = capture_with_report(model, calibration[0][:4])
    assert {"primary_capsules", "class_capsules", "capsule_length"} <= set(captured.report.kinds())
    fp32 = evaluate_accuracy(model, test, limit=TEST_IMAGES)

    # FX: quantize_fx captures the model by itself.
    integer_fx = quantize_fx(model, calibration)
    modules = [type(m) for m in integer_fx.modules()]
    assert QuantizedSquashLayer in modules and QuantizedRoutingLayer in modules
    assert _routing_points(integer_fx), "routing runs as the integer op"
    assert fp32 - evaluate_accuracy(integer_fx, test, limit=TEST_IMAGES) <= TOLERANCE_PP + 1e-9

    # NNCF: the adapter accepts what plain nncf.quantize accepts, and captures it too.
    report = quantize_with_report(model, calibration, {"subset_size": len(calibration)})
    assert _routing_points(report.model) and report.unmatched == []
    assert fp32 - evaluate_accuracy(report.model, test, limit=TEST_IMAGES) <= TOLERANCE_PP + 1e-9

    exported = export_onnx(integer_fx, calibration[0][:2], tmp_path / "model.onnx")
    assert exported.op_types.get("capsnet.IntDynamicRouting") and exported.op_types.get("capsnet.IntSquash")
    onnx_model = OnnxClassifier(InferenceSession(str(exported.path)))
    agreement = compare_classifiers(integer_fx, onnx_model, test, limit=PARITY_IMAGES)
    assert agreement.identical_outputs == 100.0


@pytest.mark.parametrize("style", list(UNSUPPORTED_STYLES))
def test_a_routing_over_the_input_capsules_stays_float_and_keeps_its_function(style, mnist):
    calibration, test = mnist
    model = load_trained(style)
    with pytest.warns(CaptureWarning, match="softmax over the input capsules") as caught:
        captured = capture_with_report(model, calibration[0][:4])
    assert "stays float" in str(caught[0].message)
    assert "class_capsules" not in captured.report.kinds()
    with torch.no_grad():
        images = calibration[1][:64]
        assert torch.allclose(captured.module(images), model(images), rtol=1e-4, atol=1e-6)
    integer = quantize_fx(model, calibration)
    assert _routing_points(integer) == []  # the routing is not quantized...
    fp32 = evaluate_accuracy(model, test, limit=TEST_IMAGES)
    assert fp32 - evaluate_accuracy(integer, test, limit=TEST_IMAGES) <= TOLERANCE_PP + 1e-9  # ...nor broken
