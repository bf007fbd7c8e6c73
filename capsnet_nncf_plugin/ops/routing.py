"""Integer dynamic routing (routing by agreement), bit-exact, built from ``int_softmax`` and ``int_squash``.

Votes ``U`` are ``[N, I, J, D]`` integers with exponent ``e_u``. Per iteration ``t`` (formats from
:class:`RoutingQuantization`):

1. ``C_t = int_softmax(B_t)`` over ``J`` (``B_0 = 0``: every coupling is ``round(2^bc / J)``, saturated).
2. ``S_t = requantize(sum_i C_t * U)`` from exponent ``e_u - bc[t]`` to ``pre_exponents[t]``, saturated to
   ``pre_bits[t]``: one rounding shift.
3. ``V_t = int_squash(S_t, pre_exponents[t], out_bits[t])`` along ``D``.
4. Unless ``t`` is the last iteration: the agreement ``A = sum_d U * V_t`` (exponent
   ``e_a = e_u - (out_bits[t] - 1)``) is added to ``B_t`` exactly at the finer exponent
   ``e_f = min(e_b, e_a)``, and the sum is requantized once to ``logit_exponents[t]`` / ``logit_bits[t]``.

Returns ``V_{T-1}``. Every intermediate is bounded from the formats and the shape before any arithmetic
runs (:func:`check_routing_bounds`): a combination that could reach 2^62 raises ``ValueError``.
"""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.ops.fixed_point import requantize
from capsnet_nncf_plugin.ops.operands import (
    INT64_BOUND,
    check_integer_dtype,
    check_integer_values,
    storage_dtype,
)
from capsnet_nncf_plugin.ops.routing_quantization import RoutingQuantization
from capsnet_nncf_plugin.ops.softmax import MAX_SOFTMAX_LENGTH, softmax_int64
from capsnet_nncf_plugin.ops.squash import MAX_CAPSULE_DIM, squash_int64

#: Votes dimensions, in order.
VOTES_LAYOUT = "[N, I, J, D]"


def check_routing_arguments(votes: torch.Tensor, params: RoutingQuantization) -> None:
    """Validate dtype, rank, shape and the int64 bounds; reads no tensor data (fake kernels call it)."""
    if not isinstance(params, RoutingQuantization):
        raise ValueError(f"params must be a RoutingQuantization, got {type(params).__name__}")
    check_integer_dtype(votes, "votes")
    if votes.dim() != 4:
        raise ValueError(
            f"votes must be {VOTES_LAYOUT} (rank 4), got shape {tuple(votes.shape)}; fold spatial "
            f"positions into N for 3D routing"
        )
    _, inputs, outputs, capsule_dim = votes.shape
    if not 1 <= outputs <= MAX_SOFTMAX_LENGTH:
        raise ValueError(f"votes has J={outputs} output capsules; routing needs 1..{MAX_SOFTMAX_LENGTH}")
    if not 1 <= capsule_dim <= MAX_CAPSULE_DIM:
        raise ValueError(
            f"votes has capsule dimension D={capsule_dim}; integer squash supports 1..{MAX_CAPSULE_DIM}"
        )
    if inputs < 1:
        raise ValueError(f"votes has I={inputs} input capsules; routing needs at least one")
    check_routing_bounds(params, inputs, capsule_dim)


def check_routing_bounds(params: RoutingQuantization, inputs: int, capsule_dim: int) -> None:
    """Raise ``ValueError`` if any intermediate of routing ``I`` inputs of dimension ``D`` could reach 2^62.

    The bounds are worst cases over all inputs of the declared formats, so passing this check proves that
    no int64 operation overflows for any data (docs/integer-ops.md, "Bounds").
    """
    votes_max = 1 << (params.votes_bits - 1)
    for iteration in range(params.iterations):
        coupling_bits = params.coupling_bits[iteration]
        accumulator_max = inputs * ((1 << coupling_bits) - 1) * votes_max
        left_shift = max(0, params.votes_exponent - coupling_bits - params.pre_exponents[iteration])
        if accumulator_max << left_shift >= INT64_BOUND:
            raise ValueError(
                f"sum_I C*U can reach {accumulator_max} * 2^{left_shift} >= 2^62 with I={inputs}, "
                f"coupling_bits[{iteration}]={coupling_bits}, votes_bits={params.votes_bits} and "
                f"pre_exponents[{iteration}]={params.pre_exponents[iteration]}; use fewer bits or a coarser "
                f"pre_exponents[{iteration}]"
            )
        if iteration == params.iterations - 1:
            continue
        agreement_max = capsule_dim * votes_max * (1 << (params.out_bits[iteration] - 1))
        agreement_exponent = params.votes_exponent - (params.out_bits[iteration] - 1)
        logits_max, logit_exponent = _logit_format(params, iteration, agreement_exponent)
        finer = min(logit_exponent, agreement_exponent)
        sum_max = (logits_max << (logit_exponent - finer)) + (agreement_max << (agreement_exponent - finer))
        sum_max <<= max(0, finer - params.logit_exponents[iteration])
        if sum_max >= INT64_BOUND:
            raise ValueError(
                f"the logit update of iteration {iteration} can reach {sum_max} >= 2^62: logits at 2^"
                f"{logit_exponent} and agreements at 2^{agreement_exponent} are too far apart for "
                f"logit_exponents[{iteration}]={params.logit_exponents[iteration]}; bring logit_exponents "
                f"closer to votes_exponent - (out_bits - 1)"
            )


def _logit_format(params: RoutingQuantization, iteration: int, agreement_exponent: int) -> tuple[int, int]:
    """Largest magnitude and exponent of the logits entering ``iteration``; ``B_0 = 0`` aligns to anything."""
    if iteration == 0:
        return 0, agreement_exponent
    return 1 << (params.logit_bits[iteration - 1] - 1), params.logit_exponents[iteration - 1]


def int_dynamic_routing(votes: torch.Tensor, params: RoutingQuantization) -> torch.Tensor:
    """Route quantized votes ``[N, I, J, D]`` (value ``votes * 2^params.votes_exponent``) in integers.

    ``votes`` are int8/int16/int32/int64 within the signed ``params.votes_bits`` range. Returns the output
    capsules ``[N, J, D]``: signed ``params.output_bits`` bits with exponent ``params.output_exponent``, as
    int8 (at most 8 bits) or int16. Raises ``ValueError`` naming the problem for a wrong dtype, rank or
    shape, out-of-range votes, or formats whose intermediates could overflow int64.
    """
    check_routing_arguments(votes, params)
    check_integer_values(votes, "votes", params.votes_bits)
    return routing_int64(votes, params).to(storage_dtype(params.output_bits, signed=True))


#: Integers below 2^53 in magnitude are exact float64 values, and so are sums of them that stay below it.
FLOAT64_EXACT_INTEGERS = 1 << 53


class _VoteProducts:
    """The two integer multiply-and-sums of routing, over votes laid out ``[N, J, I, D]`` once.

    Integer products and sums below 2^53 are exact in float64 whatever the summation order, so batched
    float64 matrix products give the same int64 results as the plain integer loops, several times faster.
    The coupling sum is exact there when ``I * 2^bc * 2^(bu-1) < 2^53``; otherwise it falls back to int64.
    The agreement (``|A| <= 2^36``) always is. Votes of any integer dtype are converted once, straight to
    the float64 layout: routing is memory-bound, and each extra pass over the votes costs as much as a
    matrix product.
    """

    def __init__(self, votes: torch.Tensor, params: RoutingQuantization) -> None:
        self.votes = votes
        # [N, J, I, D]: the transposed view converted and laid out in one pass.
        self.by_output = votes.transpose(1, 2).to(torch.float64, memory_format=torch.contiguous_format)
        largest_product = (1 << max(params.coupling_bits)) * (1 << (params.votes_bits - 1))
        self.coupling_exact_in_float = votes.shape[1] * largest_product < FLOAT64_EXACT_INTEGERS

    def coupled_sum(self, coupling: torch.Tensor) -> torch.Tensor:
        """``sum_I C * U``: ``[N, I, J]`` x ``[N, I, J, D]`` -> ``[N, J, D]``."""
        if not self.coupling_exact_in_float:
            return (coupling.unsqueeze(-1) * self.votes.to(torch.int64)).sum(dim=1)
        weights = coupling.to(torch.float64).transpose(1, 2).unsqueeze(2)  # [N, J, 1, I]
        return torch.matmul(weights, self.by_output).squeeze(2).to(torch.int64)

    def uniform_sum(self, coupling: torch.Tensor) -> torch.Tensor:
        """``sum_I c * U`` for one coupling ``c`` shared by every ``(i, j)`` (the first iteration): ``c``
        times the plain sum, exact (``|sum_I U| < I * 2^15 < 2^53``) and a third of a matrix product."""
        return self.by_output.sum(dim=2).to(torch.int64) * coupling

    def agreement(self, outputs: torch.Tensor) -> torch.Tensor:
        """``sum_D U * V``: ``[N, I, J, D]`` x ``[N, J, D]`` -> ``[N, I, J]``."""
        products = torch.matmul(self.by_output, outputs.to(torch.float64).unsqueeze(-1))  # [N, J, I, 1]
        return products.squeeze(-1).transpose(1, 2).to(torch.int64)


def routing_int64(votes: torch.Tensor, params: RoutingQuantization) -> torch.Tensor:
    """The arithmetic of :func:`int_dynamic_routing` on validated integer votes; int64 ``[N, J, D]``."""
    logits = torch.zeros(votes.shape[:3], dtype=torch.int64, device=votes.device)
    products = _VoteProducts(votes, params)
    logit_exponent = 0  # B_0 = 0: its softmax is uniform whatever the exponent
    outputs = torch.zeros((votes.shape[0], votes.shape[2], votes.shape[3]), dtype=torch.int64)
    for iteration in range(params.iterations):
        coupling_bits = params.coupling_bits[iteration]
        pre_exponent = params.pre_exponents[iteration]
        if iteration == 0:
            # B_0 = 0: every row's softmax is the same uniform coupling; compute it once.
            uniform = softmax_int64(logits.new_zeros(1, 1, logits.shape[2]), 0, coupling_bits, dim=2)
            accumulator = products.uniform_sum(uniform[0, 0, 0])  # [N, J, D], exponent e_u - bc
        else:
            coupling = softmax_int64(logits, logit_exponent, coupling_bits, dim=2)  # [N, I, J]
            accumulator = products.coupled_sum(coupling)
        pre_activation = requantize(
            accumulator,
            pre_exponent - (params.votes_exponent - coupling_bits),
            params.pre_bits[iteration],
            True,
        )
        outputs = squash_int64(pre_activation, pre_exponent, params.out_bits[iteration], dim=-1)
        if iteration == params.iterations - 1:
            break
        agreement = products.agreement(outputs)  # [N, I, J], |A| <= D 2^(bu-1) 2^(bv-1)
        agreement_exponent = params.votes_exponent - (params.out_bits[iteration] - 1)
        if iteration == 0:
            logit_exponent = agreement_exponent
        # Align both terms exactly at the finer exponent, add, then round once to the new logit format.
        finer = min(logit_exponent, agreement_exponent)
        exact_sum = (logits << (logit_exponent - finer)) + (agreement << (agreement_exponent - finer))
        new_exponent = params.logit_exponents[iteration]
        logits = requantize(exact_sum, new_exponent - finer, params.logit_bits[iteration], True)
        logit_exponent = new_exponent
    return outputs
