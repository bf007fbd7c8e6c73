"""The captured model: the exported graph with every match's region replaced by a call of its module.

Only what the outputs need is emitted (a region's inner nodes vanish unless something else reads them).
The ATen ops left between the modules are written back as the torch functions and tensor methods they
came from where one is known (``view``, ``permute``, ``cat``, ``add``...), so the FX flow, NNCF and the
exporter see the ops they see in any torch model; the rest stay ATen calls, which all of them run.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torch import fx, nn
from torch.utils import _pytree as pytree

from capsnet_nncf_plugin.capture.graph import CapturedGraph, tensor_nodes
from capsnet_nncf_plugin.capture.matches import Match

aten = torch.ops.aten

#: ATen op -> the tensor method it came from.
METHODS: dict[object, str] = {
    aten.view.default: "view",
    aten.reshape.default: "reshape",
    aten._unsafe_view.default: "reshape",
    aten.permute.default: "permute",
    aten.transpose.int: "transpose",
    aten.unsqueeze.default: "unsqueeze",
    aten.squeeze.dim: "squeeze",
    aten.squeeze.dims: "squeeze",
    aten.squeeze.default: "squeeze",
    aten.flatten.using_ints: "flatten",
    aten.contiguous.default: "contiguous",
    aten.clone.default: "clone",
    aten.detach.default: "detach",
    aten.expand.default: "expand",
    aten.select.int: "select",
    aten.sym_size.int: "size",
}
#: ATen op -> the torch function it came from (same arguments).
FUNCTIONS: dict[object, Callable] = {
    aten.cat.default: torch.cat,
    aten.stack.default: torch.stack,
    aten.add.Tensor: torch.add,
    aten.sub.Tensor: torch.sub,
    aten.mul.Tensor: torch.mul,
    aten.div.Tensor: torch.div,
    aten.softmax.int: torch.softmax,
    aten.sum.dim_IntList: torch.sum,
    aten.pow.Tensor_Scalar: torch.pow,
    aten.sqrt.default: torch.sqrt,
    aten.einsum.default: torch.einsum,
    aten.matmul.default: torch.matmul,
    aten.bmm.default: torch.bmm,
    aten.linalg_vector_norm.default: torch.linalg.vector_norm,
    aten.zeros.default: torch.zeros,
}


def _needed(graph: CapturedGraph, outputs: dict[fx.Node, Match], result: fx.Node) -> set[fx.Node]:
    needed, stack = set(), tensor_nodes(result)
    while stack:
        node = stack.pop()
        if node in needed:
            continue
        needed.add(node)
        stack.extend(outputs[node].inputs if node in outputs else tensor_nodes(node))
    return needed


def _attribute_name(target: str) -> str:
    return "captured_" + re.sub(r"\W", "_", target)


class CapturedModel(nn.Module):
    """A user's model rebuilt from the plugin's modules by ``capture``: its submodules are the recognized
    capsule modules and the user's layers, its ``forward`` the rebuilt graph's code (``self.code``).

    Not an ``fx.GraphModule``, on purpose: NNCF hands every ``GraphModule`` to its experimental Torch FX
    backend, while a plain module goes through the PyTorch backend the plugin's metatypes serve; the FX
    flow traces it like any model.
    """

    graph: fx.Graph
    code: str


def as_captured_model(module: fx.GraphModule, class_name: str) -> CapturedModel:
    """A :class:`CapturedModel` with ``module``'s submodules, buffers and generated ``forward``."""
    model_type = type(class_name, (CapturedModel,), {"forward": type(module).forward})
    model = model_type()
    for name, child in module.named_children():
        model.add_module(name, child)
    for name, buffer in module.named_buffers(recurse=False):
        model.register_buffer(name, buffer)
    model.graph, model.code = module.graph, module.code
    return model.eval()


def rebuild(graph: CapturedGraph, matches: list[Match], class_name: str) -> CapturedModel:
    """A module computing what the exported graph computes, with every match's module in its region."""
    root = nn.Module()
    for match in matches:
        root.add_module(match.name, match.module)
    outputs = {match.output: match for match in matches}
    (result,) = [node for node in graph.nodes if node.op == "output"]
    needed = _needed(graph, outputs, result)
    new = fx.Graph()
    environment: dict[fx.Node, fx.Node] = {}

    def value(argument: fx.Node) -> fx.Node:
        return environment[argument]

    for node in graph.nodes:
        if node not in needed:
            continue
        if node in outputs:
            match = outputs[node]
            arguments = [
                layout.emit(new, value(source))
                for source, layout in zip(match.inputs, match.input_layouts, strict=True)
            ]
            called = new.call_module(match.name, tuple(arguments))
            environment[node] = match.output_layout.emit(new, called)
        elif node.op == "placeholder":
            environment[node] = new.placeholder(node.name)
        elif node.op == "get_attr":
            name = _attribute_name(str(node.target))
            if not hasattr(root, name):
                tensor = graph.parameter(node)
                root.register_buffer(name, tensor.detach().clone())
            environment[node] = new.get_attr(name)
        elif node.op == "call_function":
            arguments = fx.node.map_arg(node.args, value)
            keywords = fx.node.map_arg(node.kwargs, value)
            if node.target in METHODS:
                environment[node] = new.call_method(METHODS[node.target], arguments, keywords)
            else:
                target = FUNCTIONS.get(node.target, node.target)
                environment[node] = new.call_function(target, arguments, keywords)
        else:
            raise ValueError(f"cannot rebuild node {node.format_node()}")
    leaves = fx.node.map_arg(result.args[0], value)
    out_spec = getattr(graph.module, "_out_spec", None)
    structure = pytree.tree_unflatten(list(leaves), out_spec) if out_spec is not None else leaves
    new.output(structure)
    module = fx.GraphModule(root, new)
    module.graph.eliminate_dead_code()
    module.recompile()
    return as_captured_model(module, f"Captured{class_name}")
