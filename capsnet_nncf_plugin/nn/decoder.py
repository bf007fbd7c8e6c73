"""The reconstruction decoder used as a regulariser during training (never part of the deployed model)."""

from __future__ import annotations

import torch
from torch import nn


class CapsuleDecoder(nn.Module):
    """Reconstructs the input image from the class capsules, with all but one capsule masked out.

    The kept capsule is the true class during training and the predicted (longest) one otherwise.
    The output is in [0, 1] (a sigmoid), to be compared with the pixels scaled to [0, 1].
    """

    def __init__(
        self,
        num_classes: int,
        capsule_dim: int,
        image_shape: tuple[int, int, int],
        hidden: tuple[int, ...] = (512, 1024),
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = []
        width = num_classes * capsule_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(inplace=True)]
            width = size
        layers += [nn.Linear(width, int(torch.tensor(self.image_shape).prod())), nn.Sigmoid()]
        self.layers = nn.Sequential(*layers)

    def forward(self, capsules: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = (capsules * capsules).sum(dim=-1).argmax(dim=-1)
        mask = nn.functional.one_hot(labels, capsules.shape[1]).to(capsules.dtype)
        flat = (capsules * mask.unsqueeze(-1)).flatten(1)
        return self.layers(flat).reshape(-1, *self.image_shape)
