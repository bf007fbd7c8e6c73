"""ImageDataset: raw float pixels out, uint8 in memory, cheap subsets."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from capsnet_nncf_plugin.data import ImageDataset


def _dataset(count: int = 6) -> ImageDataset:
    images = (
        torch.arange(count * 2 * 3 * 3, dtype=torch.int64)
        .remainder(256)
        .to(torch.uint8)
        .reshape(count, 2, 3, 3)
    )
    labels = torch.arange(count, dtype=torch.int64) % 3
    return ImageDataset(images, labels, name="toy", split="val", num_classes=3, class_names=("a", "b", "c"))


def test_items_are_raw_pixel_values_as_float() -> None:
    dataset = _dataset()
    image, label = dataset[5]
    assert image.dtype == torch.float32
    assert torch.equal(image, dataset.images[5].to(torch.float32))
    assert image.max() > 1.0  # not rescaled to [0, 1]
    assert isinstance(label, int) and label == 2
    assert len(dataset) == 6
    assert dataset.image_shape == (2, 3, 3)
    assert "toy" in repr(dataset) and "size=6" in repr(dataset)


def test_subset_takes_the_first_items_and_keeps_metadata() -> None:
    dataset = _dataset()
    subset = dataset.subset(4)
    assert len(subset) == 4
    assert torch.equal(subset.images, dataset.images[:4])
    assert (subset.name, subset.split, subset.num_classes, subset.class_names) == (
        "toy",
        "val",
        3,
        ("a", "b", "c"),
    )
    assert len(dataset.subset(100)) == 6
    with pytest.raises(ValueError, match=">= 0"):
        dataset.subset(-1)


def test_batches_through_a_dataloader() -> None:
    images, labels = next(iter(DataLoader(_dataset(), batch_size=4)))
    assert images.shape == (4, 2, 3, 3) and images.dtype == torch.float32
    assert labels.tolist() == [0, 1, 2, 0]


def test_rejects_wrong_dtypes_and_mismatched_lengths() -> None:
    good = _dataset()
    with pytest.raises(ValueError, match="uint8"):
        ImageDataset(good.images.float(), good.labels, name="x", split="train", num_classes=3)
    with pytest.raises(ValueError, match="int64"):
        ImageDataset(good.images, good.labels.int(), name="x", split="train", num_classes=3)
    with pytest.raises(ValueError, match="6 images but 5 labels"):
        ImageDataset(good.images, good.labels[:5], name="x", split="train", num_classes=3)
