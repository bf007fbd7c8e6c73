"""Primary capsules: one convolution, or several with the same input and geometry, whose outputs only move
(view, reshape, permute, stack, cat, ...) into the tensor a recognized squash reads.

The convolutions become one (their output channels concatenated in the order they are computed), and the
moves become the element order of a :class:`~capsnet_nncf_plugin.nn.ConvSquash`: the moves are run on the
convolution outputs replaced by their own flat indices, so the squash input reads out, element by element,
which convolution output it is. The quantized model then quantizes the convolution's weights once and the
poses once before the integer squash, as for the plugin's own ``PrimaryCapsules``.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from capsnet_nncf_plugin.capture.graph import ELEMENT_MOVES, CapturedGraph, batch_axis, tensor_nodes
from capsnet_nncf_plugin.capture.matches import Match
from capsnet_nncf_plugin.capture.recognizers.context import RecognitionContext
from capsnet_nncf_plugin.nn import ConvSquash

aten = torch.ops.aten

_CONVOLUTION_DEFAULTS = {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1}


def convolution_arguments(node: fx.Node) -> dict[str, object] | None:
    """Input, weight, bias and geometry of an ``aten.conv2d`` node (``None`` for any other node)."""
    if node.op != "call_function" or node.target is not aten.conv2d.default:
        return None
    names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
    arguments = dict(zip(names, node.args, strict=False))
    arguments.update(node.kwargs)
    for name, default in _CONVOLUTION_DEFAULTS.items():
        value = arguments.get(name, default)
        arguments[name] = list(value) * 2 if isinstance(value, list | tuple) and len(value) == 1 else value
    arguments.setdefault("bias", None)
    return arguments


def moves_into(graph: CapturedGraph, target: fx.Node) -> tuple[list[fx.Node], list[fx.Node]]:
    """The element moves that produce ``target`` (it included, if it is one) and their sources, the first
    nodes up the graph that are not moves (in graph order)."""
    moves, sources, stack = set(), set(), [target]
    while stack:
        node = stack.pop()
        if node.op == "call_function" and node.target in ELEMENT_MOVES:
            if node not in moves:
                moves.add(node)
                stack.extend(source for source in tensor_nodes(node) if not graph.shape_only(source))
        else:
            sources.add(node)
    order = {node: index for index, node in enumerate(graph.nodes)}
    return sorted(moves, key=order.get), sorted(sources, key=order.get)


def merged_convolution(graph: CapturedGraph, convolutions: list[fx.Node]) -> tuple[nn.Conv2d, fx.Node] | None:
    """One ``nn.Conv2d`` computing every convolution's channels in order, and their common input."""
    arguments = [convolution_arguments(node) for node in convolutions]
    if any(argument is None for argument in arguments):
        return None
    first = arguments[0]
    geometry = ("input", "stride", "padding", "dilation", "groups")
    if any(argument[key] != first[key] for argument in arguments for key in geometry):
        return None
    weights = [graph.parameter(argument["weight"]) for argument in arguments]
    if any(weight is None for weight in weights) or len({tuple(w.shape[1:]) for w in weights}) != 1:
        return None
    biases = [
        None if argument["bias"] is None else graph.parameter(argument["bias"]) for argument in arguments
    ]
    if any(bias is None for bias in biases) and not all(bias is None for bias in biases):
        return None
    weight = torch.cat([w.detach() for w in weights])
    conv = nn.Conv2d(
        weight.shape[1] * first["groups"],
        weight.shape[0],
        tuple(weight.shape[2:]),
        stride=tuple(first["stride"]),
        padding=tuple(first["padding"]),
        dilation=tuple(first["dilation"]),
        groups=first["groups"],
        bias=biases[0] is not None,
    )
    conv.weight.data.copy_(weight)
    if biases[0] is not None:
        conv.bias.data.copy_(torch.cat([b.detach() for b in biases]))
    return conv, first["input"]


def element_order(
    graph: CapturedGraph, convolutions: list[fx.Node], moves: list[fx.Node], target: fx.Node
) -> tuple[bool, torch.Tensor | None]:
    """For each element of one sample of ``target``, its index in the merged convolution's flattened
    output: ``(True, index)``, with ``index`` None when every element stays in place; ``(False, None)`` if
    the moves do more than move elements."""
    if not moves:
        return True, None
    function = graph.extract(convolutions, target, moves)
    encoded, offset = [], 0
    for node in convolutions:
        shape = (1, *graph.values[node].shape[1:])
        count = int(torch.tensor(shape).prod())
        encoded.append(torch.arange(offset, offset + count, dtype=torch.float64).reshape(shape))
        offset += count
    with torch.no_grad():
        flat = function(*encoded).reshape(-1)
    if not torch.equal(flat, flat.round()) or flat.min() < 0 or flat.max() >= offset:
        return False, None
    index = flat.long()
    return True, None if torch.equal(index, torch.arange(offset)) else index


def recognize_primary_capsules(context: RecognitionContext) -> list[Match]:
    """Each squash fed by convolutions through element moves only becomes one ``ConvSquash``."""
    graph = context.graph
    found: list[Match] = []
    for squash in context.of_kind("squash"):
        target = squash.inputs[0]
        if batch_axis(target) != 0:
            continue
        moves, sources = moves_into(graph, target)
        convolutions = [node for node in sources if convolution_arguments(node) is not None]
        if not convolutions or len(convolutions) != len(sources):
            continue
        inside = set(moves) | set(convolutions) | set(squash.nodes)
        if any(
            user not in inside
            for node in (*moves, *convolutions)
            for user in node.users
            if node is not target
        ):
            continue  # a convolution output or a moved tensor is read elsewhere too
        merged = merged_convolution(graph, convolutions)
        if merged is None:
            continue
        conv, features = merged
        only_moves, index = element_order(graph, convolutions, moves, target)
        if not only_moves:
            continue
        module = ConvSquash(conv, tuple(graph.values[target].shape[1:]), squash.module, index)
        with torch.no_grad():
            if not torch.allclose(
                module(graph.values[features]), graph.values[squash.output], rtol=1e-4, atol=1e-6
            ):
                continue
        names = ", ".join(str(convolution_arguments(node)["weight"].target) for node in convolutions)
        match = Match(
            kind="primary_capsules",
            name=context.name_for(convolutions[0], "primary_caps"),
            module=module,
            inputs=[features],
            output=squash.output,
            nodes=[*convolutions, *moves, *squash.nodes],
            description=f"{len(convolutions)} convolution(s) ({names}) regrouped into capsules "
            f"{tuple(module.pose_shape)}, squash over dim {squash.module.dim}",
        )
        context.replace([squash], match)
        found.append(match)
    return found
