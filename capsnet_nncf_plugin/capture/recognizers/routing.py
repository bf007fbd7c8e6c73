"""Dynamic routing, unrolled: softmax of the logits, a weighted sum of the votes, squash, agreement, again.

Structure proposes: a votes tensor ``u`` from which, through values computed from ``u`` alone (and tensors
created from sizes, such as ``torch.zeros(x.size(0), I, J)`` and its softmax), a softmax and one or more
recognized squashes are reached; the routing's output is the last of those squashes. The latest such
``u`` is taken, so that reshapes after a vote product (``(W @ u).squeeze(-1)``) stay with the votes.

Numbers confirm: the region must compute ``dynamic_routing`` (softmax over the OUTPUT capsules, the
integer op's variant) with as many iterations as it has squashes, for some assignment of ``u``'s axes to
``[batch, I, J, D]`` (size-1 axes dropped) and of the output's to ``[batch, J, D]``, on the example votes
and on scaled copies of them. The same region computing routing with the softmax over the INPUT capsules
is named as such and stays float; so does any other region of this shape (a warning says which).
"""

from __future__ import annotations

from itertools import permutations

import torch
from torch import fx

from capsnet_nncf_plugin.capture.graph import CapturedGraph, batch_axis, close, static_sizes, tensor_nodes
from capsnet_nncf_plugin.capture.matches import FloatRegion, Match, from_canonical, to_canonical
from capsnet_nncf_plugin.capture.recognizers.context import RecognitionContext
from capsnet_nncf_plugin.nn import DynamicRouting
from capsnet_nncf_plugin.nn.functional import dynamic_routing, squash

aten = torch.ops.aten

SOFTMAX_OPS = frozenset({aten.softmax.int, aten._softmax.default, aten._safe_softmax.default})
#: The routing variant the integer op computes, and the ones named when a region computes them instead.
SUPPORTED_VARIANT = "softmax over the output capsules"
INPUT_SOFTMAX_VARIANT = "softmax over the input capsules"
#: Scales of the example votes a match is also checked on.
PROBE_SCALES = (0.25, 4.0)


def routing_over_inputs(votes: torch.Tensor, iterations: int, **squash_options: object) -> torch.Tensor:
    """Routing with the coupling coefficients normalised over the input capsules (dim I): a variant some
    implementations use, which the integer routing op does not compute."""
    logits = votes.new_zeros(votes.shape[:3])
    outputs = votes
    for iteration in range(iterations):
        coupling = torch.softmax(logits, dim=1)
        outputs = squash((coupling.unsqueeze(-1) * votes).sum(dim=1), **squash_options)
        if iteration < iterations - 1:
            logits = logits + (votes * outputs.unsqueeze(1)).sum(dim=-1)
    return outputs


VARIANTS = {SUPPORTED_VARIANT: dynamic_routing, INPUT_SOFTMAX_VARIANT: routing_over_inputs}


def axis_assignments(votes: fx.Node, output: fx.Node) -> list[tuple[dict[str, int], dict[str, int]]]:
    """Every way to read ``votes`` as ``[batch, I, J, D]`` and ``output`` as ``[batch, J, D]`` that the
    sizes allow (size-1 axes left out)."""
    vote_sizes, output_sizes = static_sizes(votes), static_sizes(output)
    vote_axes = [a for a, size in enumerate(vote_sizes) if size not in (None, 1)]
    output_axes = [a for a, size in enumerate(output_sizes) if size not in (None, 1)]
    if (
        batch_axis(votes) is None
        or batch_axis(output) is None
        or len(vote_axes) != 3
        or len(output_axes) != 2
    ):
        return []
    assignments = []
    for inputs, outputs, dims in permutations(vote_axes):
        for output_j, output_d in permutations(output_axes):
            if vote_sizes[outputs] == output_sizes[output_j] and vote_sizes[dims] == output_sizes[output_d]:
                assignments.append(({"I": inputs, "J": outputs, "D": dims}, {"J": output_j, "D": output_d}))
    return assignments


def identify(
    graph: CapturedGraph,
    votes: fx.Node,
    output: fx.Node,
    region: list[fx.Node],
    absorbed: list[Match],
) -> tuple[str, dict[str, int], dict[str, int]] | None:
    """The routing variant the region computes and the axes it reads and writes, if any matches (its
    squashes as the region's own, ``absorbed``, compute them)."""
    iterations = len(absorbed)
    options = _squash_options(absorbed)
    function = graph.extract([votes], output, region)
    example = graph.values[votes]
    with torch.no_grad():
        for input_axes, output_axes in axis_assignments(votes, output):
            into = to_canonical(votes, input_axes, ("I", "J", "D"))
            back = from_canonical(output, output_axes, ("J", "D"))
            for variant, reference in VARIANTS.items():
                probes = [example, *(scale * example for scale in PROBE_SCALES)]
                if all(
                    close(function(probe), back.apply(reference(into.apply(probe), iterations, **options)))
                    for probe in probes
                ):
                    return variant, input_axes, output_axes
    return None


def _squash_options(absorbed: list[Match]) -> dict[str, object]:
    """The ``eps`` placement of the routing's squashes (the last one's), for the reference computation."""
    if not absorbed:
        return {}
    last = absorbed[-1].module
    return {"eps": last.eps, "eps_outside": last.eps_outside}


def _ancestors_within(region: list[fx.Node], graph: CapturedGraph) -> set[fx.Node]:
    """The region and the size-only nodes it reads (``zeros``, its softmax...)."""
    found, stack = set(), list(region)
    while stack:
        node = stack.pop()
        if node in found:
            continue
        found.add(node)
        stack.extend(source for source in tensor_nodes(node) if graph.shape_only(source))
    return found


def _candidates(
    graph: CapturedGraph, squash_outputs: set[fx.Node]
) -> dict[fx.Node, list[tuple[fx.Node, list[fx.Node]]]]:
    """Routing candidates by the squash they end in: ``(votes, region)`` pairs, latest votes first."""
    by_output: dict[fx.Node, list[tuple[fx.Node, list[fx.Node]]]] = {}
    for votes in reversed(graph.nodes):
        value = graph.values.get(votes)
        if votes.op == "get_attr" or not isinstance(value, torch.Tensor) or value.dim() < 3:
            continue
        if not value.is_floating_point() or votes in squash_outputs:
            continue
        closure = graph.forward_closure([votes])
        inner = [node for node in closure if node in squash_outputs]
        if not inner:
            continue
        output = inner[-1]
        region = graph.region_between([votes], output, closure=set(closure))
        reach = _ancestors_within(region, graph)
        if any(node.op == "call_function" and node.target in SOFTMAX_OPS for node in reach):
            by_output.setdefault(output, []).append((votes, region))
    return by_output


def recognize_routing(context: RecognitionContext) -> list[Match]:
    """Every unrolled dynamic routing: a ``DynamicRouting`` on the votes, or, for a variant the integer op
    does not compute, a warning and the region left float.

    For each squash a routing may end in, the candidate votes are tried latest first (the region read from
    a tensor inside the routing lacks the paths that bypass it and computes no routing); the first that
    computes a routing wins. Only when none does is the region named in a warning and left float.
    """
    graph = context.graph
    squashes = {match.output: match for match in context.of_kind("squash")}
    found: list[Match] = []
    taken: set[fx.Node] = set()
    for output, candidates in _candidates(graph, set(squashes)).items():
        if output in taken:
            continue
        identified = None
        for votes, region in candidates:
            absorbed = [squashes[node] for node in region if node in squashes]
            result = identify(graph, votes, output, region, absorbed)
            if result is not None:
                identified = (votes, region, absorbed, *result)
                break
        if identified is None:
            votes, region = candidates[-1]  # the widest region: the earliest votes
            absorbed = [squashes[node] for node in region if node in squashes]
            context.warn(
                f"capture: the routing-like region {votes.name} -> {output.name} ({len(absorbed)} "
                "squash(es), a softmax) computes neither dynamic routing variant the capture knows; it stays "
                "float"
            )
            context.keep_float(absorbed, FloatRegion(region, "unrecognized routing"))
            taken.update(region)
            continue
        votes, region, absorbed, variant, input_axes, output_axes = identified
        taken.update(region)
        iterations = len(absorbed)
        location = f"{votes.name} -> {output.name}"
        if variant != SUPPORTED_VARIANT:
            context.warn(
                f"capture: the dynamic routing {location} ({iterations} iterations) uses a {variant}; the "
                f"integer routing op computes the {SUPPORTED_VARIANT} only, so this routing stays float "
                "(its function is unchanged)"
            )
            context.keep_float(absorbed, FloatRegion(region, variant, votes, input_axes))
            continue
        match = Match(
            kind="routing",
            name=context.name_for(output, "routing"),
            module=DynamicRouting(iterations, **_squash_options(absorbed)),
            inputs=[votes],
            output=output,
            nodes=region,
            input_layouts=[to_canonical(votes, input_axes, ("I", "J", "D"))],
            output_layout=from_canonical(output, output_axes, ("J", "D")),
            description=f"dynamic routing, {iterations} iterations, {SUPPORTED_VARIANT}",
            details={"votes_axes": input_axes},
        )
        context.replace(absorbed, match)
        found.append(match)
    return found
