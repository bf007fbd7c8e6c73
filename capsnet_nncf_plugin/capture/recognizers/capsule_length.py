"""Capsule length as the class score: ``norm(v, dim)``, ``sqrt(sum(v ** 2))``, ``(v ** 2).sum(-1) ** 0.5``.

A candidate is a node computed from one tensor alone through reductions over one axis, shaped like it
without that axis (or with it kept at size 1); it is a capsule length if it computes the Euclidean norm
along that axis on the example values. It becomes the plugin's ``CapsuleLength``, whose square root runs
in float64 so that torch and onnxruntime give the same scores bit for bit.
"""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.capture.graph import close, static_sizes
from capsnet_nncf_plugin.capture.matches import Layout, Match
from capsnet_nncf_plugin.capture.recognizers.context import RecognitionContext
from capsnet_nncf_plugin.capture.recognizers.squash import reduced_axes, small_constants, squash_axis
from capsnet_nncf_plugin.nn import CapsuleLength


def recognize_capsule_length(context: RecognitionContext) -> list[Match]:
    graph = context.graph
    claimed = context.claimed()
    outputs = {match.output for match in context.matches}
    found: list[Match] = []
    for source in graph.nodes:
        value = graph.values.get(source)
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.dim() < 2:
            continue
        if source in claimed and source not in outputs:
            continue
        closure = [node for node in graph.forward_closure([source]) if node not in claimed]
        members = set(closure)
        if not any(reduced_axes(node) is not None for node in closure):
            continue
        for candidate in closure:
            candidate_value = graph.values.get(candidate)
            if not isinstance(candidate_value, torch.Tensor):
                continue
            region = graph.region_between([source], candidate, closure=members)
            axis = squash_axis(graph, region)
            if axis is None:
                continue
            kept = list(value.shape)
            kept[axis] = 1
            removed = [size for index, size in enumerate(value.shape) if index != axis]
            if list(candidate_value.shape) not in (kept, removed):
                continue
            dim = axis - value.dim()
            keepdim = list(candidate_value.shape) == kept and candidate_value.dim() == value.dim()
            # The eps under the root is the author's (none for torch.norm), so the scores stay theirs.
            lengths = [CapsuleLength(dim, eps) for eps in (*small_constants(region), 0.0)]
            with torch.no_grad():
                fitting = [
                    (
                        float(
                            (computed.double() - candidate_value.reshape(computed.shape).double()).abs().max()
                        ),
                        module,
                    )
                    for module in lengths
                    if close(computed := module(value), candidate_value.reshape(computed.shape))
                ]
            if not fitting:
                continue
            module = min(fitting, key=lambda pair: pair[0])[1]
            sizes = static_sizes(candidate)
            layout = (
                Layout(shape=tuple(-1 if size is None else size for size in sizes)) if keepdim else Layout()
            )
            match = Match(
                kind="capsule_length",
                name=context.name_for(candidate, "length", preferred="length"),
                module=module,
                inputs=[source],
                output=candidate,
                nodes=region,
                output_layout=layout,
                description=f"capsule length over axis {axis} of {source.name}",
            )
            context.add(match)
            found.append(match)
            claimed.update(region)
            break
    return found
