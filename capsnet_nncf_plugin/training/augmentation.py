"""Batch augmentation on uint8 image tensors: random shifts (with zero fill) and horizontal flips."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Augmentation:
    """Random translation by up to ``max_shift`` pixels in each direction, and optional horizontal flips."""

    max_shift: int = 0
    horizontal_flip: bool = False

    @classmethod
    def for_dataset(cls, name: str) -> Augmentation:
        """The usual recipe: +-2 px for MNIST-like digits, +-4 px for 32x32 colour images, flips for CIFAR."""
        if name in ("mnist", "fashion-mnist"):
            return cls(max_shift=2)
        if name == "cifar10":
            return cls(max_shift=4, horizontal_flip=True)
        if name == "svhn":
            return cls(max_shift=4)
        return cls()

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        batch, _, height, width = images.shape
        if self.max_shift > 0:
            pad = self.max_shift
            padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
            offsets = torch.randint(0, 2 * pad + 1, (batch, 2), generator=generator).tolist()
            images = torch.stack(
                [padded[i, :, dy : dy + height, dx : dx + width] for i, (dy, dx) in enumerate(offsets)]
            )
        if self.horizontal_flip:
            flip = torch.rand(batch, generator=generator) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        return images
