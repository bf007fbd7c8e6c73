"""Capsule network architectures (ShallowCaps, DeepCaps) and their checkpoints."""

from capsnet_nncf_plugin.models.base import CapsuleClassifier
from capsnet_nncf_plugin.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from capsnet_nncf_plugin.models.deepcaps import DeepCaps
from capsnet_nncf_plugin.models.registry import available_models, create
from capsnet_nncf_plugin.models.shallowcaps import ShallowCaps

__all__ = [
    "CapsuleClassifier",
    "Checkpoint",
    "DeepCaps",
    "ShallowCaps",
    "available_models",
    "create",
    "load_checkpoint",
    "save_checkpoint",
]
