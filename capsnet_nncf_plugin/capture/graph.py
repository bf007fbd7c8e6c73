"""The captured graph and what recognizers ask of it: ``torch.export`` with a dynamic batch, every node's
value on the example inputs, and small pieces of the graph run as functions of their inputs.

``torch.export`` traces a model the way it runs (loops with a fixed trip count unroll, ``x.size(0)``
becomes a ``sym_size`` node of the batch), to an FX graph of ATen ops whose nodes carry fake tensors with
symbolic shapes (``meta["val"]``) and the user module each op came from (``meta["nn_module_stack"]``).
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import fx

from capsnet_nncf_plugin.errors import CapsqError

aten = torch.ops.aten


class CaptureError(CapsqError, ValueError):
    """A model cannot be captured, or its capture does not compute what the model computes."""


#: Ops that only move, copy or relabel elements (every output element is one input element).
ELEMENT_MOVES = frozenset(
    {
        aten.view.default,
        aten.reshape.default,
        aten._unsafe_view.default,
        aten.permute.default,
        aten.transpose.int,
        aten.t.default,
        aten.unsqueeze.default,
        aten.squeeze.dim,
        aten.squeeze.dims,
        aten.squeeze.default,
        aten.flatten.using_ints,
        aten.unflatten.int,
        aten.contiguous.default,
        aten.clone.default,
        aten.detach.default,
        aten.alias.default,
        aten.cat.default,
        aten.stack.default,
        aten.movedim.int,
        aten.split.Tensor,
        aten.split_with_sizes.default,
        aten.chunk.default,
        aten.select.int,
        aten.slice.Tensor,
        operator.getitem,
    }
)


def export_model(model: torch.nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> fx.GraphModule:
    """``torch.export`` of ``model`` with a dynamic batch (dim 0 of every input): an FX graph of ATen ops."""
    batch = torch.export.Dim("batch")
    dynamic_shapes = tuple({0: batch} for _ in example_inputs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(model.eval(), example_inputs, dynamic_shapes=dynamic_shapes)
    except Exception as error:  # torch.export raises many types; the fix is the same
        message = " ".join(str(error).split())[:400]
        raise CaptureError(
            f"torch.export cannot capture {type(model).__name__} ({type(error).__name__}: {message}); "
            "make control flow independent of the data (fixed loop counts) and retry"
        ) from None
    return program.module()


def tensor_nodes(node: fx.Node) -> list[fx.Node]:
    """The nodes among ``node``'s arguments (nested in lists and tuples too), in order, without repeats."""
    found: list[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs), lambda argument: found.append(argument) or argument)
    return list(dict.fromkeys(found))


def is_batch_size(value: object) -> bool:
    """Whether ``value`` is the symbolic batch size (a ``SymInt`` that is not a constant)."""
    return isinstance(value, torch.SymInt) and not isinstance(value.node.maybe_as_int(), int)


def fake(node: fx.Node) -> torch.Tensor | None:
    """The fake tensor ``torch.export`` recorded for ``node`` (``None`` for non-tensor nodes)."""
    value = node.meta.get("val")
    return value if isinstance(value, torch.Tensor) else None


def batch_axis(node: fx.Node) -> int | None:
    """The axis of ``node``'s tensor whose size is the batch, if exactly one is."""
    value = fake(node)
    if value is None:
        return None
    axes = [axis for axis, size in enumerate(value.shape) if is_batch_size(size)]
    return axes[0] if len(axes) == 1 else None


def static_sizes(node: fx.Node) -> list[int | None]:
    """``node``'s shape with the batch axis as ``None``."""
    value = fake(node)
    return [None if is_batch_size(size) else int(size) for size in value.shape]


def module_path(node: fx.Node) -> str:
    """The qualified name of the innermost user module ``node`` was traced in (``""``: the model itself)."""
    stack = node.meta.get("nn_module_stack") or {}
    paths = [path for path, _ in stack.values() if path and not path.startswith("_")]
    return paths[-1] if paths else ""


def is_shape_only(node: fx.Node, known: dict[fx.Node, bool] | None = None) -> bool:
    """Whether ``node`` depends on no tensor value, only on sizes: the batch size, a tensor created from
    sizes (``torch.zeros(x.size(0), I, J)``), or anything computed from such alone (its softmax)."""
    known = {} if known is None else known
    if node in known:
        return known[node]
    if node.op == "call_function" and node.target in (aten.sym_size.int, aten.sym_numel.default):
        result = True
    elif node.op == "call_function":
        result = all(is_shape_only(source, known) for source in tensor_nodes(node))
    else:
        result = False
    known[node] = result
    return result


@dataclass
class CapturedGraph:
    """The exported graph, its parameters, and every node's value on the example inputs."""

    module: fx.GraphModule
    example_inputs: tuple[torch.Tensor, ...]
    values: dict[fx.Node, object] = field(default_factory=dict)
    _shape_only: dict[fx.Node, bool] = field(default_factory=dict)
    _parameter_only: dict[fx.Node, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.values:
            self.values = record_values(self.module, self.example_inputs)

    @property
    def nodes(self) -> list[fx.Node]:
        return list(self.module.graph.nodes)

    def parameter(self, node: fx.Node) -> torch.Tensor | None:
        """The parameter or buffer a ``get_attr`` node reads (``None`` for any other node)."""
        if node.op != "get_attr":
            return None
        value = self.module
        for part in str(node.target).split("."):
            value = getattr(value, part)
        return value if isinstance(value, torch.Tensor) else None

    def shape_only(self, node: fx.Node) -> bool:
        return is_shape_only(node, self._shape_only)

    def parameter_only(self, node: fx.Node) -> bool:
        """Whether ``node`` is a parameter, or computed from parameters (and sizes) alone
        (``W[:, None]``, ``W.unsqueeze(0).expand(...)``)."""
        if node not in self._parameter_only:
            if node.op == "get_attr":
                result = True
            elif node.op == "call_function":
                sources = tensor_nodes(node)
                result = any(self.parameter_only(source) for source in sources) and all(
                    self.parameter_only(source) or self.shape_only(source) for source in sources
                )
            else:
                result = False
            self._parameter_only[node] = result
        return self._parameter_only[node]

    def parameters_read(self, nodes: Iterable[fx.Node]) -> set[fx.Node]:
        """The ``get_attr`` nodes the nodes read, directly or through parameter-only nodes."""
        found, stack = set(), [source for node in nodes for source in tensor_nodes(node)]
        while stack:
            node = stack.pop()
            if node in found or not self.parameter_only(node):
                continue
            if node.op == "get_attr":
                found.add(node)
            else:
                stack.extend(tensor_nodes(node))
        return found

    def forward_closure(self, sources: Iterable[fx.Node], allow_parameters: bool = False) -> list[fx.Node]:
        """Nodes (in graph order) computed from ``sources`` alone: every tensor argument is a source, in the
        closure, shape-only, or (with ``allow_parameters``) a parameter."""
        inside = set(sources)
        closure = []
        for node in self.nodes:
            if node in inside or node.op != "call_function":
                continue
            arguments = tensor_nodes(node)
            if not arguments or not any(argument in inside for argument in arguments):
                continue
            if all(
                argument in inside
                or self.shape_only(argument)
                or (allow_parameters and self.parameter_only(argument))
                for argument in arguments
            ):
                inside.add(node)
                closure.append(node)
        return closure

    def region_between(
        self,
        sources: Sequence[fx.Node],
        output: fx.Node,
        allow_parameters: bool = False,
        closure: set[fx.Node] | None = None,
    ) -> list[fx.Node]:
        """The nodes of the closure of ``sources`` that ``output`` depends on (``output`` included);
        ``closure``: the closure, if the caller has it already."""
        if closure is None:
            closure = set(self.forward_closure(sources, allow_parameters))
        if output not in closure:
            return []
        needed, stack = set(), [output]
        while stack:
            node = stack.pop()
            if node in needed or node not in closure:
                continue
            needed.add(node)
            stack.extend(tensor_nodes(node))
        return [node for node in self.nodes if node in needed]

    def extract(
        self, inputs: Sequence[fx.Node], output: fx.Node, region: Sequence[fx.Node]
    ) -> Callable[..., object]:
        """The region as a function of its inputs: ``f(*tensors)`` computes ``output``'s value.

        Parameters the region reads are the model's own; a batch size read from outside the region is taken
        from the first input's batch axis.
        """
        axis = batch_axis(inputs[0])
        graph = fx.Graph()
        placeholders = {node: graph.placeholder(f"input_{index}") for index, node in enumerate(inputs)}
        environment: dict[fx.Node, fx.Node] = dict(placeholders)
        members = set(region)

        def copy(node: fx.Node) -> fx.Node:
            if node in environment:
                return environment[node]
            if node.op == "get_attr":
                environment[node] = graph.get_attr(str(node.target))
            elif node in members or self.parameter_only(node):
                environment[node] = graph.node_copy(node, copy)
            elif self.shape_only(node):
                if node.op == "call_function" and node.target is aten.sym_size.int:
                    if axis is None:
                        raise CaptureError(f"{node.name}: the region's first input has no batch axis")
                    environment[node] = graph.call_function(aten.sym_size.int, (environment[inputs[0]], axis))
                else:
                    environment[node] = graph.node_copy(node, copy)
            else:
                raise CaptureError(f"{node.name} is outside the region and not a constant")
            return environment[node]

        for node in region:
            copy(node)
        graph.output(environment[output])
        return fx.GraphModule(self.module, graph)


class _Recorder(fx.Interpreter):
    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.recorded: dict[fx.Node, object] = {}

    def run_node(self, node: fx.Node) -> object:
        result = super().run_node(node)
        self.recorded[node] = result
        return result


def record_values(module: fx.GraphModule, example_inputs: tuple[torch.Tensor, ...]) -> dict[fx.Node, object]:
    """Every node's value when ``module`` runs on ``example_inputs``."""
    recorder = _Recorder(module)
    with torch.no_grad():
        recorder.run(*example_inputs)
    return recorder.recorded


def close(actual: torch.Tensor, expected: torch.Tensor, relative: float = 1e-4) -> bool:
    """Whether two float results agree to float rounding: the largest difference is at most ``relative``
    of the largest magnitude (plus a floor for all-zero results)."""
    if actual.shape != expected.shape:
        return False
    if not (torch.isfinite(actual).all() and torch.isfinite(expected).all()):
        return False
    scale = float(expected.detach().abs().max()) if expected.numel() else 0.0
    difference = (
        float((actual.detach().double() - expected.detach().double()).abs().max()) if actual.numel() else 0.0
    )
    return difference <= relative * scale + 1e-6
