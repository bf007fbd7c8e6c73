"""Fully connected capsule layers: primary capsules, the vote transform and class capsules."""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.nn.functional import vote_transform
from capsnet_nncf_plugin.nn.routing import DynamicRouting
from capsnet_nncf_plugin.nn.squash import Squash


class PrimaryCapsules(nn.Module):
    """A convolution whose channels are grouped into capsules: ``[N, C, H, W] -> [N, caps*H'*W', dim]``.

    Capsules are ordered capsule type first, then row, then column (``i = (type*H' + y)*W' + x``).
    """

    def __init__(
        self,
        in_channels: int,
        num_capsules: int = 32,
        capsule_dim: int = 8,
        kernel_size: int = 9,
        stride: int = 2,
    ) -> None:
        super().__init__()
        self.num_capsules = num_capsules
        self.capsule_dim = capsule_dim
        self.conv = nn.Conv2d(in_channels, num_capsules * capsule_dim, kernel_size, stride=stride)
        self.squash = Squash(dim=-1)

    def output_grid(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size of the capsule grid for an input of ``height x width``."""
        (k_h, k_w), (s_h, s_w) = self.conv.kernel_size, self.conv.stride
        return (height - k_h) // s_h + 1, (width - k_w) // s_w + 1

    def poses(self, features: torch.Tensor) -> torch.Tensor:
        """The capsules before squash, ``[N, caps*H'*W', dim]``."""
        poses = self.conv(features)
        batch, _, height, width = poses.shape
        poses = poses.reshape(batch, self.num_capsules, self.capsule_dim, height, width)
        return poses.permute(0, 1, 3, 4, 2).reshape(batch, -1, self.capsule_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.squash(self.poses(features))


class VoteTransform(nn.Module):
    """Per-pair maps ``W_ij`` (weight ``[I, J, D_out, D_in]``): capsules ``[N, I, D_in]`` -> votes.

    Votes are laid out ``[N, I, J, D_out]``, the layout ``DynamicRouting`` takes.
    """

    def __init__(
        self, in_capsules: int, out_capsules: int, in_dim: int, out_dim: int, bias: bool = False
    ) -> None:
        super().__init__()
        self.in_capsules, self.out_capsules = in_capsules, out_capsules
        self.in_dim, self.out_dim = in_dim, out_dim
        # A small normal initialisation keeps the first routing pass away from squash saturation.
        self.weight = nn.Parameter(0.01 * torch.randn(in_capsules, out_capsules, out_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(out_capsules, out_dim)) if bias else None

    def forward(self, capsules: torch.Tensor) -> torch.Tensor:
        return vote_transform(capsules, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_capsules={self.in_capsules}, out_capsules={self.out_capsules}, in_dim={self.in_dim}, "
            f"out_dim={self.out_dim}, bias={self.bias is not None}"
        )


class ClassCapsules(nn.Module):
    """Vote transform followed by dynamic routing: ``[N, I, D_in] -> [N, J, D_out]``."""

    def __init__(
        self,
        in_capsules: int,
        out_capsules: int,
        in_dim: int,
        out_dim: int,
        iterations: int = 3,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.votes = VoteTransform(in_capsules, out_capsules, in_dim, out_dim, bias=bias)
        self.routing = DynamicRouting(iterations)

    def forward(self, capsules: torch.Tensor) -> torch.Tensor:
        return self.routing(self.votes(capsules))
