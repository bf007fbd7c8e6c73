"""Squash and capsule length as modules, so that quantization adapters can find them by type."""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.nn.functional import SQUASH_EPS, capsule_length, squash


class Squash(nn.Module):
    """``squash`` over one dimension (the capsule's pose vector); ``eps`` and ``eps_outside`` as there."""

    def __init__(self, dim: int = -1, eps: float = SQUASH_EPS, eps_outside: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.eps_outside = eps_outside

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return squash(tensor, dim=self.dim, eps=self.eps, eps_outside=self.eps_outside)

    def extra_repr(self) -> str:
        outside = ", eps_outside=True" if self.eps_outside else ""
        return f"dim={self.dim}, eps={self.eps:g}{outside}"


class CapsuleLength(nn.Module):
    """Length of each capsule, ``[..., D] -> [...]``: the class scores of a capsule classifier."""

    def __init__(self, dim: int = -1, eps: float = SQUASH_EPS) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, capsules: torch.Tensor) -> torch.Tensor:
        return capsule_length(capsules, dim=self.dim, eps=self.eps)
