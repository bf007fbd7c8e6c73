"""Capsule network architectures (ShallowCaps, DeepCaps) and their checkpoints."""

from capsnet_nncf_plugin.models.base import CapsuleClassifier
from capsnet_nncf_plugin.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from capsnet_nncf_plugin.models.deepcaps import DeepCaps
from capsnet_nncf_plugin.models.registry import available_models, create
from capsnet_nncf_plugin.models.shallowcaps import ShallowCaps
from capsnet_nncf_plugin.models.user_file import is_model_file, load_model_file
from capsnet_nncf_plugin.models.zoo import (
    ZOO_PREFIX,
    ZooEntry,
    add_to_zoo,
    available_pretrained,
    load_pretrained,
    open_checkpoint,
    read_manifest,
)

__all__ = [
    "ZOO_PREFIX",
    "CapsuleClassifier",
    "Checkpoint",
    "DeepCaps",
    "ShallowCaps",
    "ZooEntry",
    "add_to_zoo",
    "available_models",
    "available_pretrained",
    "create",
    "is_model_file",
    "load_checkpoint",
    "load_model_file",
    "load_pretrained",
    "open_checkpoint",
    "read_manifest",
    "save_checkpoint",
]
