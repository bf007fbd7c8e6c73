"""What a recognizer reports: a region of the captured graph and the plugin module that computes it.

A :class:`Match` replaces the value of its ``output`` node by ``module(*inputs)``; :class:`Layout`
adapters move elements between the user's tensor layout and the module's (a permute, then a reshape with
the batch kept dynamic), so a capsule module always sees the layouts of docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import fx

from capsnet_nncf_plugin.capture.graph import batch_axis, static_sizes


@dataclass(frozen=True)
class Layout:
    """Element moves from one tensor layout to another: ``tensor.permute(order).reshape(shape)``, where
    ``-1`` in ``shape`` is the batch. ``None`` fields are no-ops."""

    order: tuple[int, ...] | None = None
    shape: tuple[int, ...] | None = None

    def apply(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.order is not None:
            tensor = tensor.permute(self.order)
        if self.shape is not None:
            tensor = tensor.reshape(self.shape)
        return tensor

    def emit(self, graph: fx.Graph, value: fx.Node) -> fx.Node:
        """The same moves as nodes of ``graph``."""
        if self.order is not None:
            value = graph.call_method("permute", (value, *self.order))
        if self.shape is not None:
            value = graph.call_method("reshape", (value, *self.shape))
        return value

    @property
    def is_identity(self) -> bool:
        return self.order is None and self.shape is None


def to_canonical(node: fx.Node, axes: dict[str, int], names: tuple[str, ...]) -> Layout:
    """The moves that bring ``node``'s tensor to the layout ``(batch, *names)``: ``axes`` says which of its
    axes holds each name; every other axis must be of size 1 (it is dropped)."""
    sizes = static_sizes(node)
    batch = batch_axis(node)
    order = (batch, *(axes[name] for name in names))
    rest = [axis for axis in range(len(sizes)) if axis not in order]
    if any(sizes[axis] != 1 for axis in rest):
        raise ValueError(f"{node.name}: axes {rest} are not of size 1")
    full_order = (*order, *rest)
    shape = (-1, *(sizes[axes[name]] for name in names))
    identity_order = full_order == tuple(range(len(sizes)))
    return Layout(None if identity_order else full_order, None if identity_order and not rest else shape)


def from_canonical(node: fx.Node, axes: dict[str, int], names: tuple[str, ...]) -> Layout:
    """The moves that bring a tensor of layout ``(batch, *names)`` to ``node``'s layout (axes as in
    :func:`to_canonical`)."""
    sizes = static_sizes(node)
    batch = batch_axis(node)
    placed = sorted([(batch, "batch"), *((axes[name], name) for name in names)])
    position = {"batch": 0, **{name: index + 1 for index, name in enumerate(names)}}
    order = tuple(position[name] for _, name in placed)
    shape = tuple(-1 if size is None else size for size in sizes)
    identity_order = order == tuple(range(len(order)))
    same_rank = len(sizes) == len(names) + 1
    return Layout(None if identity_order else order, None if same_rank else shape)


@dataclass
class Match:
    """A recognized region: ``module(*inputs)`` (through the layouts) replaces the value of ``output``.

    ``name``: the module's name in the captured model; ``nodes``: the region (removed where nothing else
    reads them); ``kind``: what was recognized, for the report; ``absorbs``: matches this one contains
    (a routing's squashes).
    """

    kind: str
    name: str
    module: torch.nn.Module
    inputs: list[fx.Node]
    output: fx.Node
    nodes: list[fx.Node]
    input_layouts: list[Layout] = field(default_factory=list)
    output_layout: Layout = field(default_factory=Layout)
    description: str = ""
    absorbs: list[Match] = field(default_factory=list)
    #: What a recognizer tells the ones after it (a routing's axes of its votes, ...).
    details: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.input_layouts:
            self.input_layouts = [Layout() for _ in self.inputs]


@dataclass
class FloatRegion:
    """A region recognized but left float (a routing variant the integer op does not compute): later
    recognizers leave its nodes alone; ``votes`` and ``votes_axes`` let the vote transform before it still
    become a quantized module."""

    nodes: list[fx.Node]
    reason: str
    votes: fx.Node | None = None
    votes_axes: dict[str, int] | None = None
