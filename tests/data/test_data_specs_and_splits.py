"""Dataset specs, name resolution and the split policy."""

from __future__ import annotations

import pytest
import torch

from capsnet_nncf_plugin.data import SPLITS, VALIDATION_SIZE, available_datasets, get_spec, load_dataset
from capsnet_nncf_plugin.data.image_dataset import ImageDataset
from capsnet_nncf_plugin.data.splits import search_images, split_bounds, split_sizes


def test_available_datasets_hold_the_official_facts(official_dataset_facts) -> None:
    specs = available_datasets()
    assert list(specs) == ["mnist", "fashion-mnist", "cifar10", "svhn"]
    expected = {
        "mnist": ((1, 28, 28), 60_000, 10_000),
        "fashion-mnist": ((1, 28, 28), 60_000, 10_000),
        "cifar10": ((3, 32, 32), 50_000, 10_000),
        "svhn": ((3, 32, 32), 73_257, 26_032),
    }
    for name, (shape, train_count, test_count) in expected.items():
        spec = specs[name]
        assert spec.image_shape == shape
        assert (spec.official_train_count, spec.official_test_count) == (train_count, test_count)
        assert spec.num_classes == len(spec.class_names) == 10
    assert specs["cifar10"].class_names[0] == "airplane"
    assert specs["fashion-mnist"].class_names[-1] == "Ankle boot"


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("MNIST", "mnist"),
        ("fmnist", "fashion-mnist"),
        ("FMNIST", "fashion-mnist"),
        ("CIFAR-10", "cifar10"),
        ("Cifar10", "cifar10"),
        (" svhn ", "svhn"),
    ],
)
def test_names_and_aliases_resolve_case_insensitively(alias: str, name: str) -> None:
    assert get_spec(alias).name == name


def test_unknown_name_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'") as raised:
        load_dataset("imagenet", "train")
    for name in available_datasets():
        assert name in str(raised.value)


def test_bad_split_lists_the_valid_splits() -> None:
    with pytest.raises(ValueError, match="unknown split 'validation'") as raised:
        load_dataset("mnist", "validation")
    assert all(split in str(raised.value) for split in SPLITS)


def test_validation_is_the_tail_of_the_official_training_set() -> None:
    assert split_bounds("train", 60_000) == (0, 60_000 - VALIDATION_SIZE)
    assert split_bounds("val", 60_000) == (60_000 - VALIDATION_SIZE, 60_000)
    assert split_bounds("test", 10_000) == (0, 10_000)
    assert split_sizes(73_257, 26_032) == {"train": 68_257, "val": 5_000, "test": 26_032}
    with pytest.raises(ValueError, match="more than 5000"):
        split_bounds("train", VALIDATION_SIZE)


def test_the_search_decides_on_the_validation_images_after_the_calibrations() -> None:
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    validation = ImageDataset(images, torch.arange(10), name="t", split="val", num_classes=10)
    search = search_images(validation, 4)
    assert isinstance(search, ImageDataset) and search.labels.tolist() == [4, 5, 6, 7, 8, 9]
    assert search.images.data_ptr() == validation.images[4:].data_ptr()  # a view, not a copy
    assert len(search_images(validation, 10)) == 0 and len(search_images(validation, 50)) == 0

    class Plain(torch.utils.data.Dataset):  # no ``after``: taken as a Subset
        def __len__(self) -> int:
            return 6

        def __getitem__(self, index: int):
            return torch.zeros(1, 1, 1), index

    assert [label for _, label in search_images(Plain(), 4)] == [4, 5]
    assert len(search_images(Plain(), 9)) == 0
    with pytest.raises(ValueError, match=">= 0"):
        search_images(validation, -1)
