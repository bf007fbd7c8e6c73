"""Float capsule layers. Quantization adapters find squash and routing by their module types."""

from capsnet_nncf_plugin.nn.capsules import ClassCapsules, PrimaryCapsules, VoteTransform
from capsnet_nncf_plugin.nn.conv_capsules import ConvCaps2d, ConvCaps3d, flatten_capsules
from capsnet_nncf_plugin.nn.conv_squash import ConvSquash
from capsnet_nncf_plugin.nn.decoder import CapsuleDecoder
from capsnet_nncf_plugin.nn.functional import capsule_length, squash
from capsnet_nncf_plugin.nn.input_scaling import PixelScale
from capsnet_nncf_plugin.nn.routing import DynamicRouting
from capsnet_nncf_plugin.nn.squash import CapsuleLength, Squash

__all__ = [
    "CapsuleDecoder",
    "CapsuleLength",
    "ClassCapsules",
    "ConvCaps2d",
    "ConvCaps3d",
    "ConvSquash",
    "DynamicRouting",
    "PixelScale",
    "PrimaryCapsules",
    "Squash",
    "VoteTransform",
    "capsule_length",
    "flatten_capsules",
    "squash",
]
