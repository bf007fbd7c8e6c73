"""DeepCaps: the deep capsule network of Rajasegaran et al. (CVPR 2019)."""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.models.base import CapsuleClassifier
from capsnet_nncf_plugin.nn import ClassCapsules, ConvCaps2d, ConvCaps3d, PixelScale, flatten_capsules


def _halved(size: int, times: int) -> int:
    for _ in range(times):
        size = (size + 1) // 2
    return size


class CapsCell(nn.Module):
    """One DeepCaps cell: a strided ConvCaps2d, then two ConvCaps2d in series plus a skip branch, summed.

    The skip branch is a ConvCaps2d, or in the last cell a ConvCaps3d with 3D dynamic routing.
    """

    def __init__(
        self,
        in_capsules: int,
        in_dim: int,
        capsules: int,
        dim: int,
        routed_skip: bool = False,
        routing_iterations: int = 3,
    ) -> None:
        super().__init__()
        self.entry = ConvCaps2d(in_capsules, in_dim, capsules, dim, kernel_size=3, stride=2)
        self.main1 = ConvCaps2d(capsules, dim, capsules, dim)
        self.main2 = ConvCaps2d(capsules, dim, capsules, dim)
        self.skip: nn.Module = (
            ConvCaps3d(capsules, dim, capsules, dim, iterations=routing_iterations)
            if routed_skip
            else ConvCaps2d(capsules, dim, capsules, dim)
        )

    def forward(self, capsule_map: torch.Tensor) -> torch.Tensor:
        entry = self.entry(capsule_map)
        return self.main2(self.main1(entry)) + self.skip(entry)


class DeepCaps(CapsuleClassifier):
    """Conv 3x3@128 + ReLU + BatchNorm, four capsule cells (32x4D, then 32x8D), class capsules of 32D.

    The class capsules route from the flattened capsules of cells 3 and 4 together. Keras' BatchNorm
    momentum 0.99 is PyTorch's 0.01. The 64x64 CIFAR-10 set-up of the paper is ``image_size=64``.
    """

    name = "deepcaps"

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        routing_iterations: int = 3,
        class_bias: bool = False,
        decoder: bool = False,
        pixel_shift: int = 8,
    ) -> None:
        super().__init__(
            {
                "in_channels": in_channels,
                "image_size": image_size,
                "num_classes": num_classes,
                "routing_iterations": routing_iterations,
                "class_bias": class_bias,
                "decoder": decoder,
                "pixel_shift": pixel_shift,
            }
        )
        if image_size < 16:
            raise ValueError(f"DeepCaps needs images of at least 16x16 pixels, got {image_size}")
        self.pixel_scale = PixelScale(pixel_shift)
        self.stem = nn.Conv2d(in_channels, 128, kernel_size=3, padding=1)
        self.stem_relu = nn.ReLU()
        self.stem_bn = nn.BatchNorm2d(128, eps=1e-3, momentum=0.01)
        self.cell1 = CapsCell(1, 128, 32, 4)
        self.cell2 = CapsCell(32, 4, 32, 8)
        self.cell3 = CapsCell(32, 8, 32, 8)
        self.cell4 = CapsCell(32, 8, 32, 8, routed_skip=True, routing_iterations=routing_iterations)
        class_inputs = 32 * (_halved(image_size, 3) ** 2 + _halved(image_size, 4) ** 2)
        self.class_caps = ClassCapsules(
            class_inputs, num_classes, in_dim=8, out_dim=32, iterations=routing_iterations, bias=class_bias
        )
        if decoder:
            self._attach_decoder(num_classes, 32, in_channels, image_size)

    def class_capsules(self, images: torch.Tensor) -> torch.Tensor:
        features = self.stem_bn(self.stem_relu(self.stem(self.pixel_scale(images))))
        capsule_map = features.unsqueeze(1)  # one capsule type of 128D per position
        cell3 = self.cell3(self.cell2(self.cell1(capsule_map)))
        cell4 = self.cell4(cell3)
        capsules = torch.cat([flatten_capsules(cell4), flatten_capsules(cell3)], dim=1)
        return self.class_caps(capsules)
