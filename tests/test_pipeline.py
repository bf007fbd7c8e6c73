"""``RunConfig.check``: a run that cannot work fails before it loads a model or a dataset."""

import math

import pytest

from capsnet_nncf_plugin.pipeline import RunConfig, run

# A model that does not exist: reaching it would raise a different error, so each case proves that the
# configuration was refused first.
NO_MODEL = "zoo:not-a-model"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"weight_bits": 1}, r"weight_bits must be an integer in 2\.\.16"),
        ({"routing_bits": 17}, r"routing_bits must be an integer in 2\.\.16"),
        ({"clip": "max"}, r"clip must be one of .*hardware.*got 'max'"),
        ({"flow": "tflite"}, r"flow must be one of fx, nncf, got 'tflite'"),
        ({"criterion": "loss"}, r"criterion must be one of losses, accuracy"),
        ({"tolerance": -0.1}, r"tolerance .* must be >= 0, got -0\.1"),
        ({"tolerance": math.nan}, r"tolerance .* must be >= 0, got nan"),
        ({"calibration_images": 0}, r"calibration_images must be a positive number of images, got 0"),
        ({"test_limit": -5}, r"test_limit must be a positive number of images"),
        ({"method": "nope"}, r"unknown allocation method 'nope'; available: .*error-guided"),
        ({"activation_observer": "nope"}, r"unknown observer 'nope'; available: .*pot"),
        ({"nncf_config": "nncf.yaml"}, r"configures --flow nncf; add --flow nncf or drop it"),
        ({"flow": "nncf", "weight_observer": "pot"}, r"observer choices apply to --flow fx only"),
        ({"flow": "nncf", "bias_correction": True}, r"NNCF corrects biases itself"),
    ],
)
def test_run_refuses_a_configuration_that_cannot_work(fields, message):
    with pytest.raises(ValueError, match=message):
        run(RunConfig(model=NO_MODEL, **fields), progress=False)


@pytest.mark.parametrize("field", ["allocation", "nncf_config"])
def test_run_refuses_a_missing_input_file(field, tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(FileNotFoundError, match=f"{field}: no file .*missing.json"):
        run(RunConfig(model=NO_MODEL, flow="nncf", **{field: str(missing)}), progress=False)


def test_the_default_configuration_and_a_uniform_run_pass_the_check():
    RunConfig().check()
    RunConfig(method="none", weight_bits=4, activation_bits=16, routing_bits=2, test_limit=1).check()
