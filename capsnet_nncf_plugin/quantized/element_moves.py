"""``value_source``: the node whose values reach another through ops that only move elements.

DeepCaps feeds its first cell ``features.unsqueeze(1)``; torch.ao lets such ops share their input's
observer and quantized tensor, so the layer after them reads its producer's format unchanged. Finding that
producer is needed twice and must agree: ``separate_input_formats`` gives the layer its producer's width,
and the export form decides from it whether the layer narrows what it reads.
"""

from __future__ import annotations

import torch

#: Tensor methods that move or relabel elements and never change a value.
ELEMENT_MOVING_METHODS = frozenset(
    {"contiguous", "flatten", "permute", "reshape", "squeeze", "transpose", "unsqueeze", "view"}
)
#: The same as functions.
ELEMENT_MOVING_FUNCTIONS = frozenset(
    {torch.flatten, torch.permute, torch.reshape, torch.squeeze, torch.transpose, torch.unsqueeze}
)


def moves_elements_only(node: torch.fx.Node) -> bool:
    """Whether ``node`` only moves its first argument's elements (a reshape, permute, unsqueeze...)."""
    if node.op == "call_method":
        return node.target in ELEMENT_MOVING_METHODS
    return node.op == "call_function" and node.target in ELEMENT_MOVING_FUNCTIONS


def value_source(node: torch.fx.Node) -> torch.fx.Node:
    """``node``, or the first node before it that is not an element move (its values, rearranged)."""
    while moves_elements_only(node) and node.args and isinstance(node.args[0], torch.fx.Node):
        node = node.args[0]
    return node
