"""The recognizers on small hand-written CapsNets: every variant found and rebuilt, never a wrong match."""

import importlib
import warnings

import pytest
import torch
from capture.synthetic_models import SQUASHES, HandWrittenCapsNet, images, not_a_squash

from capsnet_nncf_plugin.capture import CaptureError, CaptureWarning, capture_with_report
from capsnet_nncf_plugin.capture.graph import CapturedGraph, export_model
from capsnet_nncf_plugin.capture.recognizers import RecognitionContext
from capsnet_nncf_plugin.capture.recognizers.squash import recognize_squash
from capsnet_nncf_plugin.nn import ClassCapsules, ConvSquash, DynamicRouting, Squash


def _kinds(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaptureWarning)
        captured = capture_with_report(model, images())
    return captured, sorted(captured.report.kinds())


@pytest.mark.parametrize("squash", list(SQUASHES))
@pytest.mark.parametrize("iterations", [1, 2, 3, 5])
def test_every_squash_form_and_iteration_count_becomes_the_plugins_modules(squash, iterations):
    model = HandWrittenCapsNet(squash=SQUASHES[squash], iterations=iterations)
    captured, kinds = _kinds(model)
    assert kinds == ["capsule_length", "class_capsules", "conv", "primary_capsules", "relu"]
    modules = dict(captured.module.named_modules())
    class_caps = next(m for m in modules.values() if isinstance(m, ClassCapsules))
    assert class_caps.routing.iterations == iterations
    # W re-laid-out as [I, J, D_out, D_in]: the user's was already in that order.
    assert torch.equal(class_caps.votes.weight, model.W)
    assert any(isinstance(m, ConvSquash) for m in modules.values())
    with torch.no_grad():
        probe = images(5, seed=9)
        assert torch.allclose(captured.module(probe), model(probe), rtol=1e-4, atol=1e-6)


def test_a_matmul_vote_product_is_the_same_vote_transform():
    _, kinds = _kinds(HandWrittenCapsNet(votes="matmul"))
    assert "class_capsules" in kinds


def test_another_non_linearity_is_not_taken_for_a_squash():
    graph = CapturedGraph(export_model(HandWrittenCapsNet(squash=not_a_squash), (images(),)), (images(),))
    context = RecognitionContext(graph)
    assert recognize_squash(context) == []


def test_routing_over_the_input_capsules_stays_float_with_a_warning_naming_the_variant():
    model = HandWrittenCapsNet(softmax_dim=1)
    with pytest.warns(
        CaptureWarning, match=r"uses a softmax over the input capsules; the integer routing op"
    ):
        captured = capture_with_report(model, images())
    kinds = captured.report.kinds()
    assert "class_capsules" not in kinds and "routing" not in kinds
    assert "vote_transform" in kinds  # the votes before it are still a quantized layer
    assert not any(
        isinstance(m, DynamicRouting | Squash) and not isinstance(m, ConvSquash)
        for m in [m for n, m in captured.module.named_modules() if "primary" not in n]
    )
    with torch.no_grad():  # its function unchanged
        assert torch.allclose(captured.module(images(4, 3)), model(images(4, 3)), rtol=1e-4, atol=1e-6)


def test_a_capture_that_would_change_the_function_raises(monkeypatch):
    capture_module = importlib.import_module("capsnet_nncf_plugin.capture.capture")

    model = HandWrittenCapsNet()
    real_rebuild = capture_module.rebuild

    def broken_rebuild(*arguments):
        rebuilt = real_rebuild(*arguments)
        with torch.no_grad():
            next(m for m in rebuilt.modules() if isinstance(m, ClassCapsules)).votes.weight.mul_(2)
        return rebuilt

    monkeypatch.setattr(capture_module, "rebuild", broken_rebuild)
    with pytest.raises(CaptureError, match="differs from the model on the example inputs"):
        capture_with_report(model, images())


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (images(1), "batch of at least 2"),
        (images().to(torch.uint8), "must be float tensors"),
    ],
)
def test_bad_example_inputs_are_named(inputs, message):
    with pytest.raises(CaptureError, match=message):
        capture_with_report(HandWrittenCapsNet(), inputs)


def test_a_model_torch_export_cannot_trace_names_the_fix():
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x  # control flow on values

    with pytest.raises(CaptureError, match=r"torch.export cannot capture DataDependent .*fixed loop counts"):
        capture_with_report(DataDependent(), images())
