"""Dynamic routing (routing by agreement) as a module."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from capsnet_nncf_plugin.nn.squash import Squash

#: ``observe(tensor_name, iteration, tensor)``: a callback that sees the routing tensors b, c, s and v.
RoutingObserver = Callable[[str, int, torch.Tensor], None]


class DynamicRouting(nn.Module):
    """Routing by agreement over votes ``[N, I, J, D]`` -> output capsules ``[N, J, D]``.

    Per iteration ``t``: ``c = softmax_J(b)``, ``s = sum_I c * votes``, ``v = squash(s)``,
    ``b = b + <votes, v>``. The names b, c, s, v are the ones the quantized routing keeps per iteration.
    DeepCaps' 3D routing is this module with the spatial positions folded into ``N``.
    """

    def __init__(self, iterations: int = 3) -> None:
        super().__init__()
        if iterations < 1:
            raise ValueError(f"DynamicRouting needs iterations >= 1, got {iterations}")
        self.iterations = iterations
        self.squash = Squash(dim=-1)

    def forward(self, votes: torch.Tensor) -> torch.Tensor:
        return self.route(votes)

    def route(self, votes: torch.Tensor, observe: RoutingObserver | None = None) -> torch.Tensor:
        """The routing loop; ``observe(tensor_name, iteration, tensor)`` sees b (from iteration 1), c, s, v.

        Calibration of quantized routing passes ``observe``; ``forward`` does not, so tracing is unaffected.
        """
        logits = votes.new_zeros(votes.shape[:3])
        outputs = votes
        for iteration in range(self.iterations):
            if observe is not None and iteration > 0:
                observe("b", iteration, logits)
            coupling = torch.softmax(logits, dim=2)
            pre_activation = (coupling.unsqueeze(-1) * votes).sum(dim=1)
            outputs = self.squash(pre_activation)
            if observe is not None:
                observe("c", iteration, coupling)
                observe("s", iteration, pre_activation)
                observe("v", iteration, outputs)
            if iteration < self.iterations - 1:
                logits = logits + (votes * outputs.unsqueeze(1)).sum(dim=-1)
        return outputs

    def extra_repr(self) -> str:
        return f"iterations={self.iterations}"
