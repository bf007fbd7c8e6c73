"""What each supported dataset is: shape, classes and official image counts, and the names it answers to."""

from __future__ import annotations

from dataclasses import dataclass

from capsnet_nncf_plugin.errors import ConfigError


@dataclass(frozen=True)
class DatasetSpec:
    """The fixed facts about one dataset, as published by its authors.

    ``folder_names`` are the sub-folders of a data directory that may hold the official files: the
    canonical name first, then the layouts other tools (torchvision) use, so an existing download works.
    """

    name: str
    channels: int
    image_size: int
    num_classes: int
    official_train_count: int
    official_test_count: int
    class_names: tuple[str, ...]
    file_format: str
    aliases: tuple[str, ...] = ()
    folder_names: tuple[str, ...] = ()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one image."""
        return (self.channels, self.image_size, self.image_size)

    @property
    def shape_text(self) -> str:
        """The image shape as ``CxHxW``, for messages and tables."""
        return "x".join(str(size) for size in self.image_shape)

    def official_count(self, part: str) -> int:
        """How many images the official ``part`` (``train`` or ``test``) holds: every copy must hold exactly
        these, since a file cut short but internally consistent would otherwise load as a smaller set."""
        return self.official_test_count if part == "test" else self.official_train_count


_DIGITS = tuple(str(digit) for digit in range(10))

_SPECS = (
    DatasetSpec(
        name="mnist",
        channels=1,
        image_size=28,
        num_classes=10,
        official_train_count=60_000,
        official_test_count=10_000,
        class_names=_DIGITS,
        file_format="idx",
        folder_names=("mnist", "MNIST/raw"),
    ),
    DatasetSpec(
        name="fashion-mnist",
        channels=1,
        image_size=28,
        num_classes=10,
        official_train_count=60_000,
        official_test_count=10_000,
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        file_format="idx",
        aliases=("fmnist", "fashion_mnist", "fashionmnist"),
        folder_names=("fashion-mnist", "FashionMNIST/raw"),
    ),
    DatasetSpec(
        name="cifar10",
        channels=3,
        image_size=32,
        num_classes=10,
        official_train_count=50_000,
        official_test_count=10_000,
        class_names=(
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ),
        file_format="cifar-python",
        aliases=("cifar-10", "cifar_10"),
        folder_names=("cifar10",),
    ),
    DatasetSpec(
        name="svhn",
        channels=3,
        image_size=32,
        num_classes=10,
        # The "extra" set (531,131 easier images) is deliberately not used.
        official_train_count=73_257,
        official_test_count=26_032,
        class_names=_DIGITS,
        file_format="svhn-mat",
        folder_names=("svhn",),
    ),
)


def available_datasets() -> dict[str, DatasetSpec]:
    """Return every supported dataset by canonical name, in a stable order."""
    return {spec.name: spec for spec in _SPECS}


def dataset_names() -> tuple[str, ...]:
    """The canonical names of the supported datasets."""
    return tuple(spec.name for spec in _SPECS)


def get_spec(name: str) -> DatasetSpec:
    """Resolve a dataset name or alias (case-insensitive) to its spec.

    Raises:
        ValueError: the name is not a supported dataset; the message lists the valid names.
    """
    wanted = name.strip().lower()
    for spec in _SPECS:
        if wanted == spec.name or wanted in spec.aliases:
            return spec
    aliases = ", ".join(f"{alias} -> {spec.name}" for spec in _SPECS for alias in spec.aliases)
    raise ConfigError(
        f"unknown dataset {name!r}; valid names are: {', '.join(dataset_names())} (aliases: {aliases})"
    )
