"""Convolutional capsule layers of DeepCaps, over capsule maps laid out ``[N, capsules, dim, H, W]``."""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.nn.routing import DynamicRouting
from capsnet_nncf_plugin.nn.squash import Squash


def flatten_capsules(capsule_map: torch.Tensor) -> torch.Tensor:
    """``[N, caps, dim, H, W] -> [N, caps*H*W, dim]`` (capsule type first, then row, then column)."""
    batch, _, dim = capsule_map.shape[:3]
    return capsule_map.permute(0, 1, 3, 4, 2).reshape(batch, -1, dim)


class ConvCaps2d(nn.Module):
    """DeepCaps' Conv2DCaps: a 2D convolution over all input poses, regrouped into capsules, then squash.

    Padding is "same" (``kernel_size // 2``), so a stride of 2 halves the grid, rounding up.
    """

    def __init__(
        self,
        in_capsules: int,
        in_dim: int,
        out_capsules: int,
        out_dim: int,
        kernel_size: int = 3,
        stride: int = 1,
    ) -> None:
        super().__init__()
        self.out_capsules, self.out_dim = out_capsules, out_dim
        self.conv = nn.Conv2d(
            in_capsules * in_dim, out_capsules * out_dim, kernel_size, stride=stride, padding=kernel_size // 2
        )
        self.squash = Squash(dim=2)

    def poses(self, capsule_map: torch.Tensor) -> torch.Tensor:
        """The capsule map before squash, ``[N, out_capsules, out_dim, H', W']``."""
        batch, capsules, dim, height, width = capsule_map.shape
        poses = self.conv(capsule_map.reshape(batch, capsules * dim, height, width))
        return poses.reshape(batch, self.out_capsules, self.out_dim, poses.shape[-2], poses.shape[-1])

    def forward(self, capsule_map: torch.Tensor) -> torch.Tensor:
        return self.squash(self.poses(capsule_map))


class ConvCaps3d(nn.Module):
    """DeepCaps' ConvCapsuleLayer3D: votes from a 3D convolution shared by all input capsules, then routing.

    The input map ``[N, I, D_in, H, W]`` is read as one volume of depth ``I * D_in``; a kernel of depth
    ``D_in`` and depth stride ``D_in`` turns each input capsule into votes for all ``J`` output capsules.
    Routing runs independently at every position: the positions are folded into the batch.
    """

    def __init__(
        self,
        in_capsules: int,
        in_dim: int,
        out_capsules: int,
        out_dim: int,
        kernel_size: int = 3,
        iterations: int = 3,
    ) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_capsules, self.out_dim = out_capsules, out_dim
        self.votes = nn.Conv3d(
            1,
            out_capsules * out_dim,
            kernel_size=(in_dim, kernel_size, kernel_size),
            stride=(in_dim, 1, 1),
            padding=(0, kernel_size // 2, kernel_size // 2),
        )
        self.routing = DynamicRouting(iterations)

    def routed_votes(self, capsule_map: torch.Tensor) -> torch.Tensor:
        """Votes with the positions folded into the batch: ``[N*H*W, I, J, D_out]``."""
        batch, capsules, dim, height, width = capsule_map.shape
        votes = self.votes(capsule_map.reshape(batch, 1, capsules * dim, height, width))
        # [N, J*D, I, H, W] -> [N*H*W, I, J, D]
        votes = votes.reshape(batch, self.out_capsules, self.out_dim, capsules, height, width)
        return votes.permute(0, 4, 5, 3, 1, 2).reshape(
            batch * height * width, capsules, self.out_capsules, -1
        )

    def unfold_positions(self, outputs: torch.Tensor, capsule_map: torch.Tensor) -> torch.Tensor:
        """Routed capsules ``[N*H*W, J, D_out]`` back to a capsule map ``[N, J, D_out, H, W]``."""
        batch, _, _, height, width = capsule_map.shape
        outputs = outputs.reshape(batch, height, width, self.out_capsules, self.out_dim)
        return outputs.permute(0, 3, 4, 1, 2)

    def forward(self, capsule_map: torch.Tensor) -> torch.Tensor:
        return self.unfold_positions(self.routing(self.routed_votes(capsule_map)), capsule_map)
