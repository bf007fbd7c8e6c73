"""Float capsule maths as plain functions: the reference every module, adapter and test agrees with."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.overrides import handle_torch_function, has_torch_function

#: ``observe(tensor_name, iteration, tensor)``: a callback that sees the routing tensors b, c, s and v.
RoutingObserver = Callable[[str, int, torch.Tensor], None]

#: Added under the square root of squash so that a zero vector maps to zero with a finite gradient.
SQUASH_EPS = 1e-8


def _dispatches(*tensors: torch.Tensor) -> bool:
    """Whether a ``__torch_function__`` handler should see a capsule op as one call.

    NNCF's tracer (a torch function mode) then records squash, the vote transform and routing as single
    nodes that the plugin's metatypes name. torch.fx proxies are left out: FX treats the capsule modules as
    leaves, and a traced user function should keep its primitive ops.
    """
    return has_torch_function(tensors) and not any(isinstance(t, torch.fx.Proxy) for t in tensors)


def squash(
    tensor: torch.Tensor, dim: int = -1, eps: float = SQUASH_EPS, eps_outside: bool = False
) -> torch.Tensor:
    """Sabour et al.'s non-linearity: keep the direction, map the norm n to n^2 / (1 + n^2).

    ``eps`` keeps a zero capsule at zero: added under the root (``s / sqrt(n^2 + eps)``, the default) or,
    with ``eps_outside``, to the norm (``s / (n + eps)``), as some implementations write it; captured
    models keep their author's choice, so their float outputs stay the original's.
    """
    if _dispatches(tensor):
        return handle_torch_function(squash, (tensor,), tensor, dim=dim, eps=eps, eps_outside=eps_outside)
    squared_norm = (tensor * tensor).sum(dim=dim, keepdim=True)
    if eps_outside:
        return tensor * (squared_norm / (1.0 + squared_norm) / (torch.sqrt(squared_norm) + eps))
    # rsqrt instead of a division by sqrt: when a quantizer rounds the norm to zero, nothing becomes 0/0.
    return tensor * (squared_norm / (1.0 + squared_norm) * torch.rsqrt(squared_norm + eps))


def capsule_length(capsules: torch.Tensor, dim: int = -1, eps: float = SQUASH_EPS) -> torch.Tensor:
    """Euclidean norm of each capsule: the class score of a capsule classifier.

    The square root runs in float64: torch's float32 CPU sqrt is not always correctly rounded (sqrt(1e-8)
    comes out one ulp high), onnxruntime's is; a float64 root rounded to float32 is correctly rounded
    everywhere, so an exported quantized model gives the same scores bit for bit.
    """
    if _dispatches(capsules):
        return handle_torch_function(capsule_length, (capsules,), capsules, dim=dim, eps=eps)
    squared = (capsules * capsules).sum(dim=dim) + eps
    return torch.sqrt(squared.to(torch.float64)).to(squared.dtype)


def vote_transform(
    capsules: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Votes ``u_hat[n, i, j] = W_ij u[n, i] (+ bias_j)``.

    Capsules ``[N, I, D_in]``, weight ``[I, J, D_out, D_in]``, votes ``[N, I, J, D_out]``.
    """
    if _dispatches(capsules, weight):
        return handle_torch_function(vote_transform, (capsules, weight), capsules, weight, bias)
    votes = torch.einsum("ijdk,nik->nijd", weight, capsules)
    return votes if bias is None else votes + bias


def dynamic_routing(
    votes: torch.Tensor,
    iterations: int = 3,
    observe: RoutingObserver | None = None,
    eps: float = SQUASH_EPS,
    eps_outside: bool = False,
) -> torch.Tensor:
    """Routing by agreement over votes ``[N, I, J, D]`` -> output capsules ``[N, J, D]``.

    Per iteration ``t``: ``c = softmax_J(b)``, ``s = sum_I c * votes``, ``v = squash(s)``,
    ``b = b + <votes, v>``; ``observe(tensor_name, iteration, tensor)`` sees b (from iteration 1), c, s, v.
    ``eps``, ``eps_outside``: the squash's (see :func:`squash`).
    """
    if _dispatches(votes):
        return handle_torch_function(
            dynamic_routing, (votes,), votes, iterations, observe, eps=eps, eps_outside=eps_outside
        )
    logits = votes.new_zeros(votes.shape[:3])
    outputs = votes
    for iteration in range(iterations):
        if observe is not None and iteration > 0:
            observe("b", iteration, logits)
        coupling = torch.softmax(logits, dim=2)
        pre_activation = (coupling.unsqueeze(-1) * votes).sum(dim=1)
        outputs = squash(pre_activation, eps=eps, eps_outside=eps_outside)
        if observe is not None:
            observe("c", iteration, coupling)
            observe("s", iteration, pre_activation)
            observe("v", iteration, outputs)
        if iteration < iterations - 1:
            logits = logits + (votes * outputs.unsqueeze(1)).sum(dim=-1)
    return outputs
