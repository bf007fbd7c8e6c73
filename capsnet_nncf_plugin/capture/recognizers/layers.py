"""The plain layers around the capsules, back as modules: ``aten.conv2d`` / ``conv3d`` / ``linear`` as
``nn.Conv2d`` / ``nn.Conv3d`` / ``nn.Linear`` with the user's weights, ``relu`` as ``nn.ReLU``, so the FX
flow quantizes them (a convolution and its ReLU fused) and NNCF sees the modules it knows."""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.capture.matches import Match
from capsnet_nncf_plugin.capture.recognizers.context import RecognitionContext
from capsnet_nncf_plugin.capture.recognizers.primary_capsules import convolution_arguments

aten = torch.ops.aten

RELU_OPS = frozenset({aten.relu.default, aten.relu_.default})


def _conv_module(context: RecognitionContext, node) -> nn.Module | None:
    arguments = convolution_arguments(node)
    if arguments is None:
        return None
    weight = context.graph.parameter(arguments["weight"])
    bias = None if arguments["bias"] is None else context.graph.parameter(arguments["bias"])
    if weight is None or (arguments["bias"] is not None and bias is None):
        return None
    groups = arguments["groups"]
    conv = nn.Conv2d(
        weight.shape[1] * groups,
        weight.shape[0],
        tuple(weight.shape[2:]),
        stride=tuple(arguments["stride"]),
        padding=tuple(arguments["padding"]),
        dilation=tuple(arguments["dilation"]),
        groups=groups,
        bias=bias is not None,
    )
    conv.weight.data.copy_(weight.detach())
    if bias is not None:
        conv.bias.data.copy_(bias.detach())
    return conv


def _linear_module(context: RecognitionContext, node) -> nn.Module | None:
    if node.target is not aten.linear.default:
        return None
    weight = context.graph.parameter(node.args[1])
    bias_node = node.args[2] if len(node.args) > 2 else None
    bias = None if bias_node is None else context.graph.parameter(bias_node)
    if weight is None or (bias_node is not None and bias is None):
        return None
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    linear.weight.data.copy_(weight.detach())
    if bias is not None:
        linear.bias.data.copy_(bias.detach())
    return linear


def recognize_layers(context: RecognitionContext) -> list[Match]:
    claimed = context.claimed()
    found = []
    for node in context.graph.nodes:
        if node.op != "call_function" or node in claimed:
            continue
        if node.target in RELU_OPS:
            module, kind = nn.ReLU(), "relu"
        else:
            module = _conv_module(context, node) or _linear_module(context, node)
            kind = "conv" if isinstance(module, nn.Conv2d) else "linear"
        if module is None:
            continue
        match = Match(
            kind=kind,
            name=context.name_for(node, kind),
            module=module,
            inputs=[node.args[0]],
            output=node,
            nodes=[node],
            description=type(module).__name__,
        )
        context.add(match)
        found.append(match)
    return found
