"""``RunConfig.check``: a run that cannot work fails before it loads a model or a dataset."""

import math

import pytest

from capsnet_nncf_plugin.job import OutputFolderError, RunConfig, run

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
        ({"tolerance": -0.1}, r"tolerance .* must be a finite number >= 0, got -0\.1"),
        ({"tolerance": math.nan}, r"tolerance .* must be a finite number >= 0, got nan"),
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


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"weight_bits": 4},
            r"--weight-bits set uniform bits, but the error-guided search decides every layer's "
            r"bits: add --method none for uniform bits, or drop --weight-bits",
        ),
        (
            {"method": "qcapsnets", "routing_bits": 4, "activation_bits": 6},
            r"--activation-bits, --routing-bits set "
            r"uniform bits, but the qcapsnets search",
        ),
        (
            {"allocation": "a.json", "method": "error-guided"},
            r"--allocation gives the bits and --method "
            r"error-guided would search them: drop one",
        ),
        ({"weight_memory_budget": 2.0, "weight_reduction": 6.0}, r"both set the weights budget: give one"),
        ({"flow": "nncf", "weight_rounding": "gptq"}, r"--weight-rounding gptq is the FX flow's"),
        ({"weight_rounding": "gptq", "bias_correction": True}, r"GPTQ and bias correction do not combine"),
        ({"tolerance": math.inf}, r"tolerance .* must be a finite number >= 0, got inf"),
        ({"tolerance": True}, r"tolerance .* must be a finite number >= 0, got True"),
    ],
)
def test_contradictory_options_are_refused_before_any_work(fields, message):
    with pytest.raises(ValueError, match=message):
        run(RunConfig(model=NO_MODEL, **fields), progress=False)


def test_an_allocation_file_with_uniform_bits_is_a_contradiction(tmp_path):
    allocation = tmp_path / "allocation.json"
    allocation.write_text("{}")
    with pytest.raises(ValueError, match=r"--weight-bits set uniform bits, but --allocation's file decides"):
        run(RunConfig(model=NO_MODEL, allocation=str(allocation), weight_bits=4), progress=False)


@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_an_output_folder_that_cannot_be_written_is_refused_first(tmp_path, where):
    existing = tmp_path / "existing_file"
    existing.write_text("not a folder")
    out = existing if where == "file" else existing / "sub"
    with pytest.raises(OutputFolderError, match=r"--out .*(is a file, not a folder|is a file, so no folder)"):
        run(RunConfig(model=NO_MODEL, out_dir=str(out)), progress=False)


def test_the_default_configuration_and_a_uniform_run_pass_the_check():
    RunConfig().check()
    RunConfig(method="none", weight_bits=4, activation_bits=16, routing_bits=2, test_limit=1).check()
