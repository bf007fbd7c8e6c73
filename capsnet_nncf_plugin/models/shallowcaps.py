"""ShallowCaps: the CapsNet of Sabour, Frosst and Hinton (NeurIPS 2017)."""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.models.base import CapsuleClassifier
from capsnet_nncf_plugin.nn import ClassCapsules, PixelScale, PrimaryCapsules


class ShallowCaps(CapsuleClassifier):
    """Conv 256@9x9 + ReLU -> 32 primary capsule types of 8D (9x9, stride 2) -> class capsules of 16D.

    At 1x28x28 there are 6x6x32 = 1,152 primary capsules and 6,804,224 parameters without the decoder
    (conv 20,992 + primary capsules 5,308,672 + vote transforms 1,474,560; +160 with ``class_bias``).
    The input is raw pixels (0..255): ``PixelScale`` turns them into [0, 1) with a power-of-two factor.
    """

    name = "shallowcaps"

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
        if image_size < 25:
            raise ValueError(f"ShallowCaps needs images of at least 25x25 pixels, got {image_size}")
        self.pixel_scale = PixelScale(pixel_shift)
        self.conv1 = nn.Conv2d(in_channels, 256, kernel_size=9)
        self.relu1 = nn.ReLU()
        self.primary_caps = PrimaryCapsules(256, num_capsules=32, capsule_dim=8, kernel_size=9, stride=2)
        grid_h, grid_w = self.primary_caps.output_grid(image_size - 8, image_size - 8)
        self.class_caps = ClassCapsules(
            32 * grid_h * grid_w,
            num_classes,
            in_dim=8,
            out_dim=16,
            iterations=routing_iterations,
            bias=class_bias,
        )
        if decoder:
            self._attach_decoder(num_classes, 16, in_channels, image_size)

    def class_capsules(self, images: torch.Tensor) -> torch.Tensor:
        features = self.relu1(self.conv1(self.pixel_scale(images)))
        return self.class_caps(self.primary_caps(features))
