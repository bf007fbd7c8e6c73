"""Malformed checkpoints: every one is a one-line CheckpointError naming the problem and the fix.

The fixed cases are the hostile-user study's; the property test feeds arbitrary dicts under the format
marker to the loader and accepts only a CheckpointError or a correctly loaded model.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import torch
from hostile_inputs import ABSENT, MALFORMED_CHECKPOINT_CHANGES, checkpoint_payload, checkpoint_payloads
from hypothesis import HealthCheck, given, settings

from capsnet_nncf_plugin.cli import main
from capsnet_nncf_plugin.errors import CheckpointError
from capsnet_nncf_plugin.models import Checkpoint, create, load_checkpoint
from capsnet_nncf_plugin.models.checkpoint import MAX_PARAMETERS

# One real model's weights, shared read-only by every case (building it costs 0.1 s).
REAL_STATE = create("shallowcaps").state_dict()
FIX = "re-create it with `capsq train --out DIR` or restore the original file"


def _payload(**changes: Any) -> dict[str, Any]:
    return checkpoint_payload(REAL_STATE, **changes)


def _error(path: Path) -> str:
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(path)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message
    return message


def _saved(tmp_path: Path, payload: Any, name: str = "bad.pt") -> Path:
    path = tmp_path / name
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(("changes", "expected"), MALFORMED_CHECKPOINT_CHANGES)
def test_malformed_bodies_are_one_line_errors(tmp_path: Path, changes: dict, expected: str) -> None:
    message = _error(_saved(tmp_path, _payload(**changes)))
    assert expected in message
    assert message.startswith(f"checkpoint {tmp_path / 'bad.pt'} ")
    if "cannot build" not in expected:
        assert message.endswith(FIX)


def test_a_config_within_each_bound_but_huge_together_is_refused_before_allocating(tmp_path: Path) -> None:
    path = _saved(tmp_path, _payload(config={"image_size": 256, "num_classes": 1000}, state_dict={}))
    started = time.perf_counter()
    message = _error(path)
    assert f"beyond the {MAX_PARAMETERS:,} allowed" in message and "describes a model of over" in message
    assert time.perf_counter() - started < 5  # 64 GB of class-capsule weights were never allocated


def test_weights_that_do_not_fit_the_config(tmp_path: Path) -> None:
    state = dict(REAL_STATE)
    del state["conv1.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["conv1.weight"] = torch.zeros(256, 1, 3, 3)
    message = _error(_saved(tmp_path, _payload(state_dict=state)))
    assert "does not match its model config: missing weights ['conv1.bias']" in message
    assert "unexpected weights ['extra.weight']" in message
    assert "conv1.weight is [256, 1, 3, 3], expected [256, 1, 9, 9]" in message and message.endswith(FIX)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights(tmp_path: Path, bad: float) -> None:
    state = dict(REAL_STATE)
    state["conv1.bias"] = state["conv1.bias"].clone()
    state["conv1.bias"][3] = bad
    message = _error(_saved(tmp_path, _payload(state_dict=state)))
    assert "weight conv1.bias holds complex, NaN or infinite values" in message


def test_a_directory_is_named_as_such(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    assert "is a directory, not a checkpoint file; pass the .pt file" in _error(run)
    _saved(run, _payload(), "best.pt")
    assert _error(run).endswith(f"is a directory, not a checkpoint file; pass {run / 'best.pt'}")


def test_the_valid_payload_loads(tmp_path: Path) -> None:
    # The cases above differ from this payload by one change each, so each error is that change's.
    loaded = load_checkpoint(_saved(tmp_path, _payload()))
    assert loaded.metadata == {"dataset": "mnist"} and not loaded.model.training
    assert torch.equal(loaded.model.state_dict()["conv1.weight"], REAL_STATE["conv1.weight"])


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"version": "2"}, "format version '2'"),
        ({"config": {"num_classes": 10**6}}, "config 'num_classes' is 1000000"),
        ({"state_dict": ABSENT}, "'state_dict' is None"),
    ],
)
def test_capsq_eval_reports_a_malformed_checkpoint_on_one_line(tmp_path, capsys, changes, expected) -> None:
    path = _saved(tmp_path, _payload(**changes))
    assert main(["eval", "--model", str(path), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"capsq eval: error: checkpoint {path} is malformed: ") and error.count("\n") == 1
    assert expected in error and "Traceback" not in error


def test_capsq_eval_names_a_directory(tmp_path, capsys) -> None:
    assert main(["eval", "--model", str(tmp_path), "--no-progress"]) == 2
    assert "is a directory, not a checkpoint file" in capsys.readouterr().err


# --- property: arbitrary dicts under the marker ------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=checkpoint_payloads(REAL_STATE))
def test_arbitrary_payloads_give_a_checkpoint_error_or_a_valid_model(payload: dict[str, Any]) -> None:
    # The property is about the payload torch.load returns, so it is handed over without a 27 MB file per
    # example; test_malformed_bodies_are_one_line_errors goes through real files.
    with mock.patch.object(torch, "load", return_value=copy.copy(payload)):
        try:
            loaded = load_checkpoint(__file__)
        except CheckpointError as error:
            assert "\n" not in str(error) and __file__ in str(error)
            return
    assert isinstance(loaded, Checkpoint) and not loaded.model.training
    assert payload["state_dict"] is REAL_STATE  # nothing else can match a model's weights
    # What the loader hands on is what its users may rely on: a metadata dict naming its dataset, or not
    # naming one (absent or null: the commands then ask for --dataset).
    assert isinstance(loaded.metadata, dict) and isinstance(loaded.training_state, dict | None)
    dataset = loaded.metadata.get("dataset")
    assert dataset is None or (isinstance(dataset, str) and dataset.strip())
    for key in ("conv1.weight", "class_caps.transform.weight"):
        if key in REAL_STATE:
            assert torch.equal(loaded.model.state_dict()[key], REAL_STATE[key])


def test_capsq_eval_refuses_a_dataset_the_model_was_not_built_for(capsys) -> None:
    assert main(["eval", "--model", "zoo:shallowcaps-mnist", "--dataset", "cifar10", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "takes 1x28x28 images of 10 classes but cifar10 has 3x32x32" in error
    assert "pass --dataset with the dataset the model was trained on" in error


def test_capsq_eval_of_a_checkpoint_naming_an_unknown_dataset(tmp_path, capsys) -> None:
    # A checkpoint of a model trained on the caller's own data loads; eval names the dataset it lacks.
    path = _saved(tmp_path, _payload(metadata={"dataset": "imagenet"}))
    assert load_checkpoint(path).metadata == {"dataset": "imagenet"}
    assert main(["eval", "--model", str(path), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("capsq eval: error: unknown dataset 'imagenet'") and error.count("\n") == 1
