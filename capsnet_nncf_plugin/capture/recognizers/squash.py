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


def small_constants(region: list[fx.Node]) -> set[float]:
    """The small positive scalars the region adds (the candidates for its ``eps``)."""
    found = set()
    for node in region:
        for argument in node.args:
            if isinstance(argument, float) and 0 < argument < 1e-2:
                found.add(argument)
    return found


def best_squash(function, example: torch.Tensor, axis: int, region: list[fx.Node]) -> Squash | None:
    """The plugin ``Squash`` (its ``eps`` and where it is added chosen to match the region's, none if the
    region has none) that computes what ``function`` does on ``example`` and on random capsules like it;
    ``None`` if no squash does."""
    generator = torch.Generator().manual_seed(0)
    shape = (2, *example.shape[1:])
    probes = [example, *(scale * torch.randn(shape, generator=generator) for scale in PROBE_SCALES)]
    dim = axis - example.dim()
    candidates = [
        Squash(dim, eps, outside) for eps in (*small_constants(region), 0.0) for outside in (False, True)
    ]
    best, best_difference = None, float("inf")
    with torch.no_grad():
        expected = [function(probe) for probe in probes]
        for candidate in candidates:
            outputs = [candidate(probe) for probe in probes]
            if not all(close(output, want) for output, want in zip(outputs, expected, strict=True)):
                continue
            difference = max(
                float((o.double() - w.double()).abs().max()) for o, w in zip(outputs, expected, strict=True)
            )
            if difference < best_difference:
                best, best_difference = candidate, difference
    return best


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
            module = best_squash(function, value, axis, region)
            if module is not None:
                matches.append(
                    context.add(
                        Match(
                            kind="squash",
                            name=context.name_for(candidate, "squash"),
                            module=module,
                            inputs=[source],
                            output=candidate,
                            nodes=region,
                            description=f"squash over axis {axis} of {source.name}",
                        )
                    )
                )
                claimed.update(region)
                break
    return matches
