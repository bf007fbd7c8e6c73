"""Training losses of capsule classifiers."""

from __future__ import annotations

import torch


def margin_loss(
    lengths: torch.Tensor,
    labels: torch.Tensor,
    positive_margin: float = 0.9,
    negative_margin: float = 0.1,
    negative_weight: float = 0.5,
) -> torch.Tensor:
    """Sabour et al.'s margin loss, summed over classes and averaged over the batch.

    The true class capsule is pushed above ``positive_margin``; the others below ``negative_margin``,
    their term down-weighted by ``negative_weight`` (lambda) so early training does not shrink every capsule.
    """
    targets = torch.nn.functional.one_hot(labels, lengths.shape[1]).to(lengths.dtype)
    present = targets * torch.relu(positive_margin - lengths) ** 2
    absent = negative_weight * (1.0 - targets) * torch.relu(lengths - negative_margin) ** 2
    return (present + absent).sum(dim=1).mean()


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum of squared errors per image, averaged over the batch (scale it by 0.0005 as in the paper)."""
    return ((reconstruction - target) ** 2).flatten(1).sum(dim=1).mean()
