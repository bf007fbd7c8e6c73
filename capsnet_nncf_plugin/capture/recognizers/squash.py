"""Squash, however it is written: a tensor ``s`` scaled by a function of its norm along one axis.

Structure proposes, numbers confirm. A candidate is a node ``v`` shaped like some ``s`` and computed from
``s`` alone through exactly one kind of reduction over one axis ``d`` (``sum(keepdim)`` or a vector norm),
as every squash in real code is: ``s * n2 / (1 + n2) / sqrt(n2 + eps)``, ``norm**2 / (1 + norm**2) /
(norm + eps) * s``, norms by ``torch.norm``, ``linalg.vector_norm``, ``(x ** 2).sum(d) ** 0.5`` or
``sqrt``. It is a squash if it computes ``squash(s, d)`` on the values ``s`` takes on the example inputs
and on random capsules of three magnitudes. An ``eps`` anywhere changes the result by less than float
rounding at any norm that matters; another non-linearity (``1 - exp(-|s|)``, ...) does not pass.
"""

from __future__ import annotations

import torch
from torch import fx

from capsnet_nncf_plugin.capture.graph import CapturedGraph, close, fake, tensor_nodes
from capsnet_nncf_plugin.capture.matches import Match
from capsnet_nncf_plugin.capture.recognizers.context import RecognitionContext
from capsnet_nncf_plugin.nn import Squash
from capsnet_nncf_plugin.nn.functional import squash

aten = torch.ops.aten

#: The reductions a squash computes its norm with, and where each keeps its axis argument.
_REDUCTIONS = {
    aten.sum.dim_IntList: 1,
    aten.linalg_vector_norm.default: 2,
    aten.norm.ScalarOpt_dim: 2,
    aten.mean.dim: 1,
}
#: Magnitudes of the random capsules each candidate is also checked on.
PROBE_SCALES = (1e-2, 1.0, 30.0)


def reduced_axes(node: fx.Node) -> tuple[int, ...] | None:
    """The axes a reduction node reduces over (normalised), ``None`` if it is not one of ``_REDUCTIONS``."""
    if node.op != "call_function" or node.target not in _REDUCTIONS:
        return None
    position = _REDUCTIONS[node.target]
    axes = node.args[position] if len(node.args) > position else node.kwargs.get("dim")
    source = fake(tensor_nodes(node)[0])
    if axes is None or source is None:
        return None
    axes = [axes] if isinstance(axes, int) else list(axes)
    return tuple(sorted(axis % source.dim() for axis in axes))


def squash_axis(graph: CapturedGraph, region: list[fx.Node]) -> int | None:
    """The one axis every reduction of ``region`` reduces over, if there is one."""
    axes = {reduced_axes(node) for node in region} - {None}
    if len(axes) != 1:
        return None
    (single,) = axes
    return single[0] if len(single) == 1 else None


def computes_squash(function, example: torch.Tensor, axis: int) -> bool:
    """Whether ``function`` is squash along ``axis`` on ``example`` and on random capsules like it."""
    with torch.no_grad():
        if not close(function(example), squash(example, dim=axis)):
            return False
        generator = torch.Generator().manual_seed(0)
        shape = (2, *example.shape[1:])
        for scale in PROBE_SCALES:
            probe = scale * torch.randn(shape, generator=generator)
            if not close(function(probe), squash(probe, dim=axis)):
                return False
    return True


def recognize_squash(context: RecognitionContext) -> list[Match]:
    """Every squash of the graph, as a :class:`~capsnet_nncf_plugin.nn.Squash` on its input."""
    graph = context.graph
    matches: list[Match] = []
    claimed: set[fx.Node] = set()
    for source in graph.nodes:
        value = graph.values.get(source)
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.dim() < 2:
            continue
        if source in claimed:
            continue
        closure = graph.forward_closure([source])
        if not any(reduced_axes(node) is not None for node in closure):
            continue
        members = set(closure)
        for candidate in closure:
            candidate_value = graph.values.get(candidate)
            if not isinstance(candidate_value, torch.Tensor) or candidate_value.shape != value.shape:
                continue
            region = graph.region_between([source], candidate, closure=members)
            axis = squash_axis(graph, region)
            if axis is None:
                continue
            function = graph.extract([source], candidate, region)
            if computes_squash(function, value, axis):
                matches.append(
                    Match(
                        kind="squash",
                        name=context.name_for(candidate, "squash"),
                        module=Squash(dim=axis - value.dim()),
                        inputs=[source],
                        output=candidate,
                        nodes=region,
                        description=f"squash over axis {axis} of {source.name}",
                    )
                )
                claimed.update(region)
                break
    return matches
