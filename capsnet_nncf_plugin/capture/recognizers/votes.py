"""Vote transforms, however they are written: ``u_hat[n, i, j, d] = sum_k W[i, j, d, k] u[n, i, k]``.

Structure proposes: the votes a routing reads (or a routing left float) are computed from one capsule
tensor ``u`` and exactly one parameter ``W`` (``einsum``, ``matmul``/``@`` over a broadcast 5-D weight,
``bmm`` after reshapes, per-capsule linear maps). Numbers confirm and say where each weight goes: the
region is run with ``W`` replaced by its own flat indices and ``u`` by one-hot capsules, so every vote
reads out the index of the weight that produced it. A region that computes a vote transform gives each
canonical position ``(i, j, d, k)`` exactly one weight: the map is a permutation, and the plugin's
``VoteTransform`` gets ``W`` re-laid-out as ``[I, J, D_out, D_in]``. Weights shared between input
capsules, a bias, or anything that is not a plain vote product fails the check and stays float.
"""

from __future__ import annotations

from itertools import permutations

import torch
from torch import fx

from capsnet_nncf_plugin.capture.graph import (
    ELEMENT_MOVES,
    CapturedGraph,
    batch_axis,
    close,
    module_path,
    static_sizes,
    tensor_nodes,
)
from capsnet_nncf_plugin.capture.matches import Match, from_canonical, to_canonical
from capsnet_nncf_plugin.capture.recognizers.context import RecognitionContext
from capsnet_nncf_plugin.nn import ClassCapsules, VoteTransform
from capsnet_nncf_plugin.nn.functional import vote_transform


def vote_region(graph: CapturedGraph, votes: fx.Node) -> tuple[fx.Node, fx.Node, list[fx.Node]] | None:
    """``(capsules, weight, region)``: the latest tensor from which ``votes`` is computed with exactly one
    parameter, moved back over element moves of it (so ``u[:, :, None, :, None]`` stays in the region)."""
    found = None
    for capsules in reversed(graph.nodes[: graph.nodes.index(votes)]):
        if capsules.op == "get_attr" or graph.shape_only(capsules):
            continue
        value = graph.values.get(capsules)
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue
        region = graph.region_between([capsules], votes, allow_parameters=True)
        weights = graph.parameters_read(region)
        if region and len(weights) == 1:
            found = (capsules, next(iter(weights)), region)
            break
    if found is None:
        return None
    capsules, weight, region = found
    while capsules.op == "call_function" and capsules.target in ELEMENT_MOVES:
        sources = [source for source in tensor_nodes(capsules) if not graph.shape_only(source)]
        if len(sources) != 1:
            break
        wider = graph.region_between(sources, votes, allow_parameters=True)
        if not wider or graph.parameters_read(wider) != {weight}:
            break
        capsules, region = sources[0], wider
    return capsules, weight, region


def weight_positions(
    graph: CapturedGraph,
    capsules: fx.Node,
    weight: fx.Node,
    votes: fx.Node,
    region: list[fx.Node],
    capsule_axes: dict[str, int],
    vote_axes: dict[str, int],
) -> torch.Tensor | None:
    """Where each canonical weight ``[I, J, D, K]`` is in the user's flat weight, if the region is a vote
    transform for these axes (a permutation of the user's weights), else ``None``."""
    user_weight = graph.parameter(weight)
    sizes = static_sizes(capsules)
    inputs, dim_in = sizes[capsule_axes["I"]], sizes[capsule_axes["K"]]
    function = graph.extract([capsules, weight], votes, [*region])
    encoded = torch.arange(user_weight.numel(), dtype=torch.float64).reshape(user_weight.shape)
    into_user = from_canonical(capsules, capsule_axes, ("I", "K"))
    out_of_user = to_canonical(votes, vote_axes, ("I", "J", "D"))
    columns = []
    with torch.no_grad():
        zero = torch.zeros((1, inputs, dim_in), dtype=torch.float64)
        if function(into_user.apply(zero), encoded).abs().max() != 0:
            return None  # a bias or any other term that does not vanish with the capsules
        for k in range(dim_in):
            one_hot = zero.clone()
            one_hot[:, :, k] = 1
            columns.append(out_of_user.apply(function(into_user.apply(one_hot), encoded))[0])
    positions = torch.stack(columns, dim=-1)  # [I, J, D, K]
    if not torch.equal(positions, positions.round()):
        return None
    positions = positions.long()
    if positions.numel() != user_weight.numel() or not torch.equal(
        positions.flatten().sort().values, torch.arange(user_weight.numel())
    ):
        return None
    return positions


def _capsule_axes(capsules: fx.Node, input_count: int) -> list[dict[str, int]]:
    sizes = static_sizes(capsules)
    axes = [a for a, size in enumerate(sizes) if size not in (None, 1)]
    if batch_axis(capsules) is None or len(axes) != 2:
        return []
    return [{"I": i, "K": k} for i, k in permutations(axes) if input_count is None or sizes[i] == input_count]


def _vote_axes(votes: fx.Node) -> list[dict[str, int]]:
    axes = [a for a, size in enumerate(static_sizes(votes)) if size not in (None, 1)]
    if batch_axis(votes) is None or len(axes) != 3:
        return []
    return [{"I": i, "J": j, "D": d} for i, j, d in permutations(axes)]


def canonical_weight(
    graph: CapturedGraph,
    votes: fx.Node,
    vote_axes_choices: list[dict[str, int]],
) -> tuple[fx.Node, fx.Node, list[fx.Node], dict[str, int], dict[str, int], torch.Tensor] | None:
    """The vote region of ``votes`` and its weight as ``[I, J, D_out, D_in]``, checked on the example."""
    found = vote_region(graph, votes)
    if found is None:
        return None
    capsules, weight, region = found
    user_weight = graph.parameter(weight).detach()
    for vote_axes in vote_axes_choices:
        input_count = static_sizes(votes)[vote_axes["I"]]
        for capsule_axes in _capsule_axes(capsules, input_count):
            positions = weight_positions(graph, capsules, weight, votes, region, capsule_axes, vote_axes)
            if positions is None:
                continue
            canonical = user_weight.flatten()[positions]
            into = to_canonical(capsules, capsule_axes, ("I", "K"))
            expected = to_canonical(votes, vote_axes, ("I", "J", "D")).apply(graph.values[votes])
            with torch.no_grad():
                computed = vote_transform(into.apply(graph.values[capsules]), canonical)
            if close(computed, expected):
                return capsules, weight, region, capsule_axes, vote_axes, canonical
    return None


def recognize_votes(context: RecognitionContext) -> list[Match]:
    """The vote transform before every routing: with a recognized routing, the two become one
    ``ClassCapsules``; before a routing left float, a ``VoteTransform`` alone."""
    graph = context.graph
    found: list[Match] = []
    targets = [(match.inputs[0], match.details["votes_axes"], match) for match in context.of_kind("routing")]
    targets += [
        (region.votes, region.votes_axes, None) for region in context.floating if region.votes is not None
    ]
    for votes, votes_axes, routing in targets:
        recognized = canonical_weight(graph, votes, [votes_axes])
        if recognized is None:
            context.warn(
                f"capture: the votes {votes.name} are not a vote transform the capture can re-lay out "
                "(one weight per (input capsule, output capsule) pair, no bias); they stay float"
            )
            continue
        capsules, weight, region, capsule_axes, vote_axes, canonical = recognized
        inputs, outputs, dim_out, dim_in = canonical.shape
        into = to_canonical(capsules, capsule_axes, ("I", "K"))
        description = f"vote transform W[{inputs}, {outputs}, {dim_out}, {dim_in}] from {weight.target}"
        if routing is not None:
            module = ClassCapsules(inputs, outputs, dim_in, dim_out, iterations=routing.module.iterations)
            module.votes.weight.data.copy_(canonical)
            module.routing = routing.module
            context.names.discard(routing.name)
            match = Match(
                kind="class_capsules",
                name=context.name_for(votes, "class_caps", preferred=module_path(routing.output) or None),
                module=module,
                inputs=[capsules],
                output=routing.output,
                nodes=[*region, *routing.nodes],
                input_layouts=[into],
                output_layout=routing.output_layout,
                description=f"{description}, then {routing.description}",
            )
            context.replace([routing], match)
        else:
            module = VoteTransform(inputs, outputs, dim_in, dim_out)
            module.weight.data.copy_(canonical)
            match = Match(
                kind="vote_transform",
                name=context.name_for(votes, "votes"),
                module=module,
                inputs=[capsules],
                output=votes,
                nodes=region,
                input_layouts=[into],
                output_layout=from_canonical(votes, vote_axes, ("I", "J", "D")),
                description=description,
            )
            context.add(match)
        found.append(match)
    return found
