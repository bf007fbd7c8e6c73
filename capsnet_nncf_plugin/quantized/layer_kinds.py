"""Which float layers the integer model has a quantized form for, and of which kind.

Three kinds, one quantized module class each (:mod:`.modules`): a plain layer with one weight (or a batch
norm), a layer ending in squash, and a layer ending in dynamic routing. Both flows and the allocation read
this table, so a layer the plugin learns to quantize is added once.
"""

from __future__ import annotations

from torch import nn

from capsnet_nncf_plugin.nn import (
    ClassCapsules,
    ConvCaps2d,
    ConvCaps3d,
    ConvSquash,
    DynamicRouting,
    PrimaryCapsules,
    Squash,
    VoteTransform,
)

PLAIN = "plain"
SQUASH = "squash"
ROUTING = "routing"

LAYER_KINDS: dict[type[nn.Module], str] = {
    nn.Conv2d: PLAIN,
    nn.Conv3d: PLAIN,
    nn.Linear: PLAIN,
    nn.BatchNorm2d: PLAIN,
    VoteTransform: PLAIN,
    Squash: SQUASH,
    PrimaryCapsules: SQUASH,
    ConvCaps2d: SQUASH,
    ConvSquash: SQUASH,
    DynamicRouting: ROUTING,
    ClassCapsules: ROUTING,
    ConvCaps3d: ROUTING,
}


def layer_kind(module: nn.Module) -> str | None:
    """The kind of quantized form ``module`` gets (by exact type), ``None`` if it stays float."""
    return LAYER_KINDS.get(type(module))


def routing_of(module: nn.Module) -> DynamicRouting:
    """The ``DynamicRouting`` of a routing layer (the layer itself, or the one it owns)."""
    routing = module if isinstance(module, DynamicRouting) else getattr(module, "routing", None)
    if not isinstance(routing, DynamicRouting):
        raise ValueError(f"{type(module).__name__} does not route; routing layers hold a DynamicRouting")
    return routing


def routing_iterations(module: nn.Module) -> int:
    """How many routing iterations a routing layer runs."""
    return routing_of(module).iterations


def weighted_layer(module: nn.Module) -> nn.Module | None:
    """The float layer whose weight the quantized form of ``module`` stores (``None``: no weight)."""
    kind = layer_kind(module)
    if kind == PLAIN:
        return None if isinstance(module, nn.BatchNorm2d) else module
    if kind == SQUASH:
        return None if isinstance(module, Squash) else module.conv
    if kind == ROUTING:
        return None if isinstance(module, DynamicRouting) else module.votes
    return None
