"""``ConvSquash``: primary capsules in any layout - a convolution, a fixed regrouping of its outputs into
capsules, and squash.

Real code builds primary capsules in many ways: a convolution viewed as ``[N, types, D, H, W]`` then
permuted, a plain ``view(N, -1, D)``, several convolutions stacked, the capsule dimension first or last.
Every one of them is a convolution followed by moves of its output elements, and every sequence of moves
is one permutation of each sample's elements. ``ConvSquash`` keeps that permutation as an index (the
capture computes it from the user's own ops), so one module covers them all, and its quantized form is
the plugin's: integer convolution weights, the pre-squash poses quantized, integer squash.
"""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.nn.squash import Squash


class ConvSquash(nn.Module):
    """``squash(gather(conv(x)))``: ``conv``'s output per sample, flattened, read in ``index`` order (all
    of it in order when ``index`` is None) and shaped ``pose_shape``, then ``squash`` (a ``Squash``)."""

    index: torch.Tensor | None

    def __init__(
        self, conv: nn.Conv2d, pose_shape: tuple[int, ...], squash: Squash, index: torch.Tensor | None = None
    ):
        super().__init__()
        self.conv = conv
        self.pose_shape = tuple(int(size) for size in pose_shape)
        self.register_buffer("index", None if index is None else index.to(torch.long))
        self.squash = squash

    def poses(self, features: torch.Tensor) -> torch.Tensor:
        """The capsules before squash, ``[N, *pose_shape]``."""
        flat = self.conv(features).flatten(1)
        if self.index is not None:
            flat = flat.index_select(1, self.index)
        return flat.reshape(-1, *self.pose_shape)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.squash(self.poses(features))

    def extra_repr(self) -> str:
        regrouped = "in order" if self.index is None else "regrouped"
        return f"pose_shape={self.pose_shape}, {regrouped}"
