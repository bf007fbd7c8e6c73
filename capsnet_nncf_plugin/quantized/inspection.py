"""``quantization_points(model)``: every quantized tensor of an integer model, for memory and export."""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.quantized.carrier import exponent_of_scale, signed_from_container
from capsnet_nncf_plugin.quantized.modules import QuantizedModule
from capsnet_nncf_plugin.quantized.points import QuantizationPoint


def quantization_points(model: torch.nn.Module) -> list[QuantizationPoint]:
    """Name, kind (weight, activation, routing), bits, exponent and elements per sample of each point.

    Layer inputs that torch quantizes (a ``torch.quantize_per_tensor`` feeding a quantized layer, after
    float ops such as reshapes or additions) are reported as ``<layer>.input``, read from the graph.
    """
    modules = dict(model.named_modules())
    points: list[QuantizationPoint] = []
    input_points = _input_points(model, modules) if isinstance(model, torch.fx.GraphModule) else {}
    for name, module in modules.items():
        if isinstance(module, QuantizedModule):
            if name in input_points:
                points.append(input_points[name])
            points.extend(module.points(name))
    if not points:
        raise ValueError(
            "the model has no quantization points; pass a model converted with the plugin's configs "
            "(get_capsnet_convert_custom_config)"
        )
    return points


def _input_points(
    model: torch.fx.GraphModule, modules: dict[str, torch.nn.Module]
) -> dict[str, QuantizationPoint]:
    points = {}
    for node in model.graph.nodes:
        if node.op != "call_function" or node.target is not torch.quantize_per_tensor:
            continue
        _, scale_node, zero_point_node, dtype = node.args
        scale = float(getattr(model, scale_node.target))
        zero_point = int(getattr(model, zero_point_node.target))
        for user in node.users:
            layer = modules.get(str(user.target)) if user.op == "call_module" else None
            if isinstance(layer, QuantizedModule) and "input" in layer.elements:
                points[str(user.target)] = QuantizationPoint(
                    f"{user.target}.input",
                    "activation",
                    layer.input_bits,
                    signed_from_container(dtype, zero_point),
                    exponent_of_scale(scale, f"{user.target} input"),
                    layer.elements["input"],
                )
    return points


def quantized_modules(model: torch.nn.Module) -> dict[str, QuantizedModule]:
    """The quantized modules of ``model`` by name, in definition order."""
    return {name: module for name, module in model.named_modules() if isinstance(module, QuantizedModule)}
