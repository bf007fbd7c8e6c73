"""``ImageDataset``: labelled images held in memory as uint8, served as raw 0..255 float pixels."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class ImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """Images ``uint8 [N, C, H, W]`` and labels ``int64 [N]`` of one dataset split.

    Items are ``(image, label)`` with the image as float32 but NOT rescaled or normalised: the models take
    raw pixel values 0..255, so the quantization ranges they were calibrated on stay meaningful. Keeping
    uint8 in memory costs a quarter of float32 storage.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        name: str,
        split: str,
        num_classes: int,
        class_names: tuple[str, ...] = (),
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"images must be a uint8 [N, C, H, W] tensor, got {images.dtype} {list(images.shape)}"
            )
        if labels.dtype != torch.int64 or labels.dim() != 1:
            raise ValueError(f"labels must be an int64 [N] tensor, got {labels.dtype} {list(labels.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels
        self.name = name
        self.split = split
        self.num_classes = num_classes
        self.class_names = class_names

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index].to(torch.float32), int(self.labels[index])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        channels, height, width = self.images.shape[1:]
        return (int(channels), int(height), int(width))

    def after(self, count: int) -> ImageDataset:
        """The items after the first ``count`` (none if there are fewer) as a new dataset sharing storage.

        Raises:
            ValueError: ``count`` is negative.
        """
        if count < 0:
            raise ValueError(f"the number of items to skip must be >= 0, got {count}")
        return self._sliced(slice(count, None))

    def subset(self, count: int) -> ImageDataset:
        """The first ``count`` items (all of them if there are fewer) as a new dataset sharing storage.

        Raises:
            ValueError: ``count`` is negative.
        """
        if count < 0:
            raise ValueError(f"subset size must be >= 0, got {count}")
        return self._sliced(slice(None, count))

    def _sliced(self, items: slice) -> ImageDataset:
        """The ``items`` of this dataset as a new one sharing storage."""
        return ImageDataset(
            self.images[items],
            self.labels[items],
            name=self.name,
            split=self.split,
            num_classes=self.num_classes,
            class_names=self.class_names,
        )

    def __repr__(self) -> str:
        shape = "x".join(str(size) for size in self.image_shape)
        return (
            f"ImageDataset(name={self.name!r}, split={self.split!r}, size={len(self)}, image_shape={shape})"
        )
