"""What every capsule classifier of the zoo shares: scores from class-capsule lengths, an optional decoder."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from capsnet_nncf_plugin.nn import CapsuleDecoder, CapsuleLength


class CapsuleClassifier(nn.Module):
    """Base of ShallowCaps and DeepCaps.

    ``forward(images)`` returns the class-capsule lengths ``[N, classes]`` (the class scores);
    ``class_capsules(images)`` returns the capsules ``[N, classes, dim]``; ``reconstruct`` runs the decoder.
    Subclasses implement ``class_capsules`` and record their constructor arguments in ``config`` so that
    ``models.create(name, **config)`` rebuilds them.
    """

    #: Registry name, set by each subclass.
    name: str = ""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        self.length = CapsuleLength(dim=-1)
        self.decoder: CapsuleDecoder | None = None

    def _attach_decoder(self, num_classes: int, capsule_dim: int, in_channels: int, image_size: int) -> None:
        self.decoder = CapsuleDecoder(num_classes, capsule_dim, (in_channels, image_size, image_size))

    def class_capsules(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.length(self.class_capsules(images))

    def reconstruct(self, capsules: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder output in [0, 1]; needs a model built with ``decoder=True``."""
        if self.decoder is None:
            raise RuntimeError(
                f"{type(self).__name__} was built without a decoder; create it with decoder=True"
            )
        return self.decoder(capsules, labels)

    def without_decoder(self) -> CapsuleClassifier:
        """Drops the training-only decoder in place (the deployed model never has one) and returns self."""
        self.decoder = None
        self.config["decoder"] = False
        return self
