"""When a model needs capturing: it computes capsules outside the plugin's modules, or FX cannot trace it."""

from __future__ import annotations

import logging

import torch

from capsnet_nncf_plugin.capture.capture import capture
from capsnet_nncf_plugin.capture.rebuild import CapturedModel
from capsnet_nncf_plugin.nn import (
    CapsuleLength,
    ClassCapsules,
    ConvCaps2d,
    ConvCaps3d,
    ConvSquash,
    DynamicRouting,
    PrimaryCapsules,
    Squash,
    VoteTransform,
)
from capsnet_nncf_plugin.quantized.layer_kinds import LAYER_KINDS

logger = logging.getLogger(__name__)

#: The plugin's capsule modules: a model holding one is built from them and is taken as it is.
CAPSULE_MODULES = (
    Squash,
    VoteTransform,
    DynamicRouting,
    PrimaryCapsules,
    ClassCapsules,
    ConvCaps2d,
    ConvCaps3d,
    ConvSquash,
    CapsuleLength,
)


def traceable_by_fx(model: torch.nn.Module) -> bool:
    """Whether ``torch.fx`` symbolic tracing (what ``prepare_fx`` runs) gets through ``model``."""

    class _LeafTracer(torch.fx.Tracer):
        def is_leaf_module(self, module: torch.nn.Module, qualified_name: str) -> bool:
            return type(module) in LAYER_KINDS or super().is_leaf_module(module, qualified_name)

    try:
        _LeafTracer().trace(model)
    except Exception:  # torch.fx raises many types; any of them means the FX flow cannot take the model
        return False
    return True


def needs_capture(model: torch.nn.Module) -> bool:
    """Whether ``model`` must be captured before the FX flow, the NNCF adapter or an allocation search can
    quantize it: it holds none of the plugin's capsule modules (its capsules, if any, are written by hand),
    or ``torch.fx`` cannot trace it."""
    if isinstance(model, CapturedModel):
        return False
    if not any(isinstance(module, CAPSULE_MODULES) for module in model.modules()):
        return True
    return not traceable_by_fx(model)


def ensure_captured(model: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module:
    """``model`` itself if the plugin can quantize it as it is, else its capture on ``example`` (a batch;
    a single image is repeated, as the capture needs a batch of 2 to keep the batch dynamic)."""
    if not needs_capture(model):
        return model
    if example.shape[0] < 2:
        example = torch.cat([example, example])
    logger.info("capturing %s (its capsules are not the plugin's modules)", type(model).__name__)
    return capture(model, example[:4])
