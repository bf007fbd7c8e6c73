import json

import pytest
import torch

from capsnet_nncf_plugin.data import ImageDataset, load_dataset
from capsnet_nncf_plugin.errors import CheckpointError
from capsnet_nncf_plugin.evaluation import evaluate_accuracy
from capsnet_nncf_plugin.models import (
    add_to_zoo,
    available_pretrained,
    create,
    load_pretrained,
    read_manifest,
    save_checkpoint,
)
from capsnet_nncf_plugin.models.zoo import ZOO_DIR, open_checkpoint, sha256_of


@pytest.fixture
def tiny_zoo(tmp_path):
    """A zoo in tmp_path holding one untrained ShallowCaps whose 'test set' it labels perfectly."""
    model = create("shallowcaps", decoder=True).eval()
    checkpoint = save_checkpoint(
        tmp_path / "best.pt", model, {"dataset": "mnist", "val_accuracy": 97.5, "epoch": 3}
    )
    images = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        labels = model.half().float()(images.float()).argmax(dim=1)
    test_set = ImageDataset(images, labels, name="mnist", split="test", num_classes=10)
    zoo_dir = tmp_path / "zoo"
    entry = add_to_zoo(
        checkpoint,
        "tiny",
        {"command": "capsq train ...", "epochs": 3},
        zoo_dir=zoo_dir,
        progress=False,
        test_set=test_set,
    )
    return zoo_dir, entry


def test_add_stores_float16_weights_without_decoder_and_a_manifest(tiny_zoo):
    zoo_dir, entry = tiny_zoo
    assert entry.test_accuracy == 100.0 and entry.val_accuracy == 97.5
    assert entry.sha256 == sha256_of(zoo_dir / "tiny.pt")
    stored = torch.load(zoo_dir / "tiny.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in stored["state_dict"].values() if v.is_floating_point())
    assert not any(key.startswith("decoder.") for key in stored["state_dict"])
    manifest = json.loads((zoo_dir / "manifest.json").read_text())
    assert manifest["models"][0]["name"] == "tiny" and manifest["models"][0]["config"]["decoder"] is False
    assert (zoo_dir / "tiny.pt").stat().st_size < 20e6


def test_load_pretrained_returns_a_float32_eval_model(tiny_zoo):
    zoo_dir, _ = tiny_zoo
    model = load_pretrained("tiny", zoo_dir=zoo_dir)
    assert not model.training and model.decoder is None
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert available_pretrained(zoo_dir) == ["tiny"]


def test_corrupted_zoo_file_is_refused(tiny_zoo):
    zoo_dir, _ = tiny_zoo
    with (zoo_dir / "tiny.pt").open("r+b") as stream:
        stream.seek(-10, 2)
        stream.write(b"0123456789")
    with pytest.raises(CheckpointError, match="corrupted: sha256"):
        load_pretrained("tiny", zoo_dir=zoo_dir)
    with pytest.raises(CheckpointError, match="no zoo model named 'nope'"):
        load_pretrained("nope", zoo_dir=zoo_dir)


@pytest.mark.parametrize("name", available_pretrained())
def test_shipped_model_matches_its_checksum_and_manifest_accuracy(name):
    entry = read_manifest()[name]
    assert sha256_of(ZOO_DIR / entry.file) == entry.sha256
    assert (ZOO_DIR / entry.file).stat().st_size <= 20e6
    checkpoint = open_checkpoint(f"zoo:{name}")
    accuracy = evaluate_accuracy(checkpoint.model, load_dataset(entry.dataset, "test"), limit=1000)
    assert accuracy >= entry.test_accuracy - 0.5
