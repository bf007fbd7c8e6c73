"""Squash and capsule length as modules, so that quantization adapters can find them by type."""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.nn.functional import SQUASH_EPS, capsule_length, squash


class Squash(nn.Module):
    """``squash`` over one dimension (the capsule's pose vector)."""

    def __init__(self, dim: int = -1, eps: float = SQUASH_EPS) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return squash(tensor, dim=self.dim, eps=self.eps)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class CapsuleLength(nn.Module):
    """Length of each capsule, ``[..., D] -> [...]``: the class scores of a capsule classifier."""

    def __init__(self, dim: int = -1, eps: float = SQUASH_EPS) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, capsules: torch.Tensor) -> torch.Tensor:
        return capsule_length(capsules, dim=self.dim, eps=self.eps)
