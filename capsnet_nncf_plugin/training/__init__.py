"""Training of the float capsule networks that the zoo ships and quantization starts from."""

from capsnet_nncf_plugin.training.augmentation import Augmentation
from capsnet_nncf_plugin.training.curves import plot_training_curves
from capsnet_nncf_plugin.training.losses import margin_loss, reconstruction_loss
from capsnet_nncf_plugin.training.trainer import TrainConfig, TrainResult, train

__all__ = [
    "Augmentation",
    "TrainConfig",
    "TrainResult",
    "margin_loss",
    "plot_training_curves",
    "reconstruction_loss",
    "train",
]
