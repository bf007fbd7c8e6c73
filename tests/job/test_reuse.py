"""The measurements a rerun reuses: read back only for the same model code, weights and images."""

import json
import logging

import pytest
import torch

from capsnet_nncf_plugin.allocation import analyze_errors
from capsnet_nncf_plugin.data.image_dataset import ImageDataset
from capsnet_nncf_plugin.evaluation import evaluate_accuracy
from capsnet_nncf_plugin.job import reuse
from capsnet_nncf_plugin.job.reuse import analysis_folder, fp32_test_accuracy, reuse_folder
from tests.tiny_capsnet import tiny_capsnet, tiny_deepcaps, tiny_images


def tiny_dataset(count: int = 40, seed: int = 3) -> ImageDataset:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 1, 16, 16), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 3, (count,), generator=generator)
    return ImageDataset(images, labels, name="tiny", split="test", num_classes=3)


@pytest.fixture
def counted(monkeypatch):
    """The FP32 passes that really ran."""
    calls = []

    def evaluate(*arguments, **keywords):
        calls.append(keywords.get("limit"))
        return evaluate_accuracy(*arguments, **keywords)

    monkeypatch.setattr(reuse, "evaluate_accuracy", evaluate)
    return calls


def test_the_fp32_accuracy_is_measured_once_and_read_back(tmp_path, counted):
    model, dataset = tiny_capsnet(), tiny_dataset()
    measured = fp32_test_accuracy(model, dataset, None, str(tmp_path))
    assert measured == evaluate_accuracy(model, dataset)
    assert fp32_test_accuracy(model, dataset, None, str(tmp_path)) == measured
    assert counted == [None]
    kept = list((tmp_path / "fp32-test").glob("*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["images"] == 40


def test_other_weights_images_or_limits_are_measured_again(tmp_path, counted):
    model, dataset = tiny_capsnet(), tiny_dataset()
    fp32_test_accuracy(model, dataset, None, str(tmp_path))
    fp32_test_accuracy(tiny_capsnet(seed=1), dataset, None, str(tmp_path))
    fp32_test_accuracy(model, tiny_dataset(seed=4), None, str(tmp_path))
    fp32_test_accuracy(model, dataset, 20, str(tmp_path))
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    fp32_test_accuracy(model, dataset, None, str(tmp_path))
    assert counted == [None, None, None, 20, None]
    assert len(list((tmp_path / "fp32-test").glob("*.json"))) == 5


def test_without_a_reuse_folder_every_pass_runs(counted):
    model, dataset = tiny_capsnet(), tiny_dataset()
    fp32_test_accuracy(model, dataset, None, None)
    fp32_test_accuracy(model, dataset, None, None)
    assert counted == [None, None]


@pytest.mark.parametrize("content", ["{not json", '{"format": 1, "accuracy": 250, "images": 40}', "[]"])
def test_a_damaged_file_is_measured_over(tmp_path, counted, caplog, content):
    model, dataset = tiny_capsnet(), tiny_dataset()
    expected = fp32_test_accuracy(model, dataset, None, str(tmp_path))
    (kept,) = (tmp_path / "fp32-test").glob("*.json")
    kept.write_text(content)
    with caplog.at_level(logging.WARNING):
        assert fp32_test_accuracy(model, dataset, None, str(tmp_path)) == expected
    assert len(counted) == 2
    assert json.loads(kept.read_text())["accuracy"] == expected  # and kept again


def test_a_dataset_without_tensors_is_always_measured(tmp_path, counted):
    model, dataset = tiny_capsnet(), tiny_dataset()
    items = [dataset[index] for index in range(len(dataset))]
    fp32_test_accuracy(model, items, None, str(tmp_path))
    fp32_test_accuracy(model, items, None, str(tmp_path))
    assert len(counted) == 2 and not (tmp_path / "fp32-test").exists()


def test_reuse_folders(tmp_path):
    assert reuse_folder(None) is None and analysis_folder(None) is None
    assert reuse_folder(str(tmp_path)) == tmp_path
    assert analysis_folder(str(tmp_path)) == tmp_path / "error-analysis"
    assert reuse_folder("auto") == reuse.automatic_folder()


def test_the_analysis_is_kept_under_its_fingerprint_and_read_back(tmp_path):
    model, images = tiny_deepcaps(), [tiny_images(16, seed=4)]
    first = analyze_errors(model, images, candidate_bits=[3, 8], lazy=True, cache_folder=tmp_path)
    entry = first.error("cell.main1", "weight", 3)
    (kept,) = tmp_path.glob("*.json")
    second = analyze_errors(model, images, candidate_bits=[3, 8], lazy=True, cache_folder=tmp_path)
    assert second.errors["cell.main1"]["weight"][3] == entry  # read, before anything asks for it
    analyze_errors(tiny_deepcaps(seed=1), images, candidate_bits=[3, 8], lazy=True, cache_folder=tmp_path)
    other = analyze_errors(tiny_deepcaps(seed=1), images, candidate_bits=[3, 8], cache_folder=tmp_path)
    assert other.errors["cell.main1"]["weight"][3] != entry
    assert len(list(tmp_path.glob("*.json"))) == 2 and kept.exists()
