"""The layers an allocation assigns bits to: every module the FX flow quantizes, found by tracing.

A layer is named as in ``model.named_modules()`` (the keys of a ``BitAllocation``); its *block* is the
first component of the name (a DeepCaps cell, a ShallowCaps layer); a convolution whose only user is a ReLU
is marked fused, as ``prepare_fx`` will fuse it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from capsnet_nncf_plugin.quantized.layer_kinds import LAYER_KINDS, ROUTING, layer_kind, routing_iterations


@dataclass(frozen=True)
class Layer:
    name: str
    module_type: str
    block: str
    fused_relu: bool
    routing: bool  # holds dynamic-routing tensors


class _LayerTracer(torch.fx.Tracer):
    def is_leaf_module(self, module: torch.nn.Module, qualified_name: str) -> bool:
        return type(module) in LAYER_KINDS or super().is_leaf_module(module, qualified_name)


def _is_relu(node: torch.fx.Node, modules: dict[str, torch.nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules.get(str(node.target)), torch.nn.ReLU)
    return node.op == "call_function" and node.target in (torch.relu, torch.nn.functional.relu)


def quantizable_layers(model: torch.nn.Module) -> list[Layer]:
    """The model's quantizable layers in execution order."""
    try:
        graph = _LayerTracer().trace(model)
    except Exception as error:  # torch.fx raises many types; the fix is the same
        raise ValueError(
            f"the model cannot be traced by torch.fx ({error}); see docs/fx.md, 'Your own CapsNet'"
        ) from error
    modules = dict(model.named_modules())
    layers = []
    for node in graph.nodes:
        if node.op != "call_module" or layer_kind(modules.get(str(node.target))) is None:
            continue
        module = modules[str(node.target)]
        users = list(node.users)
        fused = isinstance(module, torch.nn.Conv2d) and len(users) == 1 and _is_relu(users[0], modules)
        layers.append(
            Layer(
                name=str(node.target),
                module_type=type(module).__name__,
                block=str(node.target).split(".")[0],
                fused_relu=fused,
                routing=layer_kind(module) == ROUTING,
            )
        )
    if not layers:
        raise ValueError(
            "the model has no layer the plugin quantizes (see docs/fx.md for the supported ones)"
        )
    return layers


def blocks(layers: list[Layer]) -> dict[str, list[Layer]]:
    """Layers grouped by block, in execution order of each block's first layer."""
    grouped: dict[str, list[Layer]] = {}
    for layer in layers:
        grouped.setdefault(layer.block, []).append(layer)
    return grouped


def model_layers(model: torch.nn.Module) -> dict[str, int | None]:
    """Each quantizable layer's name and its routing iterations (``None`` if it does not route): what
    ``BitAllocation.check_layers`` checks an allocation against."""
    modules = dict(model.named_modules())
    return {
        layer.name: routing_iterations(modules[layer.name]) if layer.routing else None
        for layer in quantizable_layers(model)
    }
