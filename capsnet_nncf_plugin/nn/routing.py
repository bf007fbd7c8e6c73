"""Dynamic routing (routing by agreement) as a module."""

from __future__ import annotations

import torch
from torch import nn

from capsnet_nncf_plugin.nn.functional import SQUASH_EPS, RoutingObserver, dynamic_routing


class DynamicRouting(nn.Module):
    """Routing by agreement over votes ``[N, I, J, D]`` -> output capsules ``[N, J, D]``.

    Per iteration ``t``: ``c = softmax_J(b)``, ``s = sum_I c * votes``, ``v = squash(s)``,
    ``b = b + <votes, v>``. The names b, c, s, v are the ones the quantized routing keeps per iteration.
    DeepCaps' 3D routing is this module with the spatial positions folded into ``N``.
    """

    def __init__(self, iterations: int = 3, eps: float = SQUASH_EPS, eps_outside: bool = False) -> None:
        super().__init__()
        if iterations < 1:
            raise ValueError(f"DynamicRouting needs iterations >= 1, got {iterations}")
        self.iterations = iterations
        self.eps = eps  # the squash's (see functional.squash)
        self.eps_outside = eps_outside

    def forward(self, votes: torch.Tensor) -> torch.Tensor:
        return self.route(votes)

    def route(self, votes: torch.Tensor, observe: RoutingObserver | None = None) -> torch.Tensor:
        """The routing loop; ``observe(tensor_name, iteration, tensor)`` sees b (from iteration 1), c, s, v.

        Calibration of quantized routing passes ``observe``; ``forward`` does not, so tracing is unaffected.
        """
        return dynamic_routing(votes, self.iterations, observe, self.eps, self.eps_outside)

    def extra_repr(self) -> str:
        return f"iterations={self.iterations}"
