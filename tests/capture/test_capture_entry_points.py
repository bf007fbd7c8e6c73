"""A user's CapsNet through every entry point: the allocation search, ``capsq run`` on its file, and a
recognizer added by a plugin."""

import json
import os
import warnings
from pathlib import Path

import pytest
from capture.synthetic_models import HandWrittenCapsNet, images
from capture.user_models import load_trained

from capsnet_nncf_plugin import plugins
from capsnet_nncf_plugin.allocation import allocate
from capsnet_nncf_plugin.capture import (
    capture_with_report,
    needs_capture,
    ordered,
)
from capsnet_nncf_plugin.cli import main
from capsnet_nncf_plugin.data import is_fetched, load_dataset
from capsnet_nncf_plugin.fx import quantize_fx
from capsnet_nncf_plugin.hookspecs import hookimpl
from capsnet_nncf_plugin.models import load_model_file
from capsnet_nncf_plugin.quantized import quantization_points

USER_MODELS = Path(__file__).resolve().parent / "user_models"


@pytest.fixture
def mnist():
    if not is_fetched("mnist"):
        if os.environ.get("CI"):
            pytest.fail("MNIST is missing in CI; `make setup` fetches it")
        pytest.skip("needs MNIST: run `capsq data fetch mnist`")
    return load_dataset("mnist", "val")


def test_an_allocation_search_runs_on_a_users_capsnet(mnist):
    model = load_trained("einsum")
    calibration = [mnist.images[:128].float()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        allocation = allocate(
            model, calibration, mnist, method="error-guided", tolerance=1.0, validation_limit=200
        )
        quantized = quantize_fx(model, calibration, allocation=allocation)
    # The search ran on the capture: its layers are the recognized modules, bits of its own choosing.
    assert set(allocation.layers) == {"conv1", "primary", "class_caps"}
    assert allocation.info["evaluations"] >= 2 and allocation.info["meets_tolerance"]
    assert allocation.info["weight_reduction"] > 4.0
    weights = {point.name: point.bits for point in quantization_points(quantized) if point.kind == "weight"}
    assert weights == {
        f"{name}.{part}": allocation.layers[name].weight
        for name, part in (("conv1", "weight"), ("primary", "conv.weight"), ("class_caps", "votes.weight"))
    }


def test_capsq_run_takes_a_model_file_and_its_weights(mnist, tmp_path, capsys):
    out = tmp_path / "run"
    arguments = ["run", "--model", f"{USER_MODELS / 'bmm_caps.py'}:factory", "--weights"]
    arguments += [str(USER_MODELS / "weights" / "bmm.pt"), "--dataset", "mnist", "--limit", "64"]
    arguments += ["--calibration", "64", "--method", "none", "--out", str(out), "--no-progress"]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert "100.00 % of images bit-identical" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_images"] == 64 and summary["memory"]["routing_bits"] > 0  # integer routing
    assert abs(summary["accuracy_delta"]) <= 2.0 and (out / "model.onnx").stat().st_size > 0


@pytest.mark.parametrize(
    ("reference", "weights", "message"),
    [
        ("missing.py:factory", None, r"model file missing.py does not exist"),
        ("{models}/bmm_caps.py:nope", None, r"has no function 'nope'; it defines .*factory"),
        ("{models}/bmm_caps.py:factory", "{models}/weights/einsum.pt", r"einsum.pt does not fit BmmCapsNet"),
    ],
)
def test_a_bad_model_file_is_one_line(reference, weights, message):
    from capsnet_nncf_plugin.errors import CheckpointError

    with pytest.raises(CheckpointError, match=message):
        load_model_file(reference.format(models=USER_MODELS), weights and weights.format(models=USER_MODELS))


def test_zoo_models_are_not_captured_and_users_are():
    from capsnet_nncf_plugin.models import create

    assert not needs_capture(create("shallowcaps"))
    assert needs_capture(HandWrittenCapsNet())


def test_a_plugin_adds_a_recognizer_that_runs_in_its_place_in_the_order():
    """A third-party recognizer arrives through the capsnet_capture_recognizers hook, like the built-ins."""
    seen = []

    def count_primary_capsules(context):
        seen.append(sum(1 for match in context.matches if match.kind == "primary_capsules"))
        return []

    class ThirdPartyPlugin:
        @hookimpl
        def capsnet_capture_recognizers(self):
            return {"count-primary-capsules": ordered(count_primary_capsules, 45)}

    manager = plugins.get_plugin_manager()
    plugin = ThirdPartyPlugin()
    manager.register(plugin, name="third-party-recognizer")
    try:
        capture_with_report(HandWrittenCapsNet(), images())
    finally:
        manager.unregister(plugin)
    assert seen == [1]  # ran after primary-capsules (order 40), as its order asks
