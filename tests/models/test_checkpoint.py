import pytest
import torch

from capsnet_nncf_plugin.errors import CheckpointError
from capsnet_nncf_plugin.models import create, load_checkpoint, save_checkpoint


def test_round_trip_restores_architecture_weights_and_metadata(tmp_path):
    model = create("deepcaps", in_channels=3, image_size=32, class_bias=True)
    path = save_checkpoint(tmp_path / "deep.pt", model, {"dataset": "cifar10", "val_accuracy": 12.5})
    loaded = load_checkpoint(path)
    assert loaded.metadata == {"dataset": "cifar10", "val_accuracy": 12.5}
    assert loaded.model.config == model.config and not loaded.model.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)
    # plain torch.load with weights_only=True reads it: no code is unpickled
    assert torch.load(path, weights_only=True)["model"] == "deepcaps"


def test_no_temporary_files_are_left(tmp_path):
    save_checkpoint(tmp_path / "a.pt", create("shallowcaps"))
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_truncated_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", create("shallowcaps"))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(path)


def test_foreign_file_and_mismatched_weights_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a capsnet_nncf_plugin checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    path = save_checkpoint(tmp_path / "a.pt", create("shallowcaps"))
    payload = torch.load(path, weights_only=True)
    payload["config"]["class_bias"] = True
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="does not match its model config"):
        load_checkpoint(path)
