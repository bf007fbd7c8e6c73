import pytest
import torch

from capsnet_nncf_plugin.data import ImageDataset


def synthetic_digits(count: int, seed: int, size: int = 28, classes: int = 4) -> ImageDataset:
    """Bright 6x6 squares whose position encodes the class, over noise: separable in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % classes
    images = torch.randint(0, 40, (count, 1, size, size), generator=generator, dtype=torch.uint8)
    for index, label in enumerate(labels.tolist()):
        row, col = divmod(label, 2)
        images[index, 0, 4 + 12 * row : 10 + 12 * row, 4 + 12 * col : 10 + 12 * col] = 250
    return ImageDataset(images, labels, name="synthetic", split="train", num_classes=classes)


@pytest.fixture
def tiny_splits():
    return synthetic_digits(60, seed=0), synthetic_digits(20, seed=1)
