"""The integer capsule ops as ``torch.library`` custom ops, ``capsnet::int_squash`` and
``capsnet::int_dynamic_routing``, so that quantized models call them as single graph nodes.

Each op runs the torch reference (the one definition of the arithmetic) and has a fake kernel computing
only the output shape and dtype, so ``torch.export`` and dynamo trace them with a dynamic batch. The
schemas mirror the ONNX ``capsnet`` domain ops of docs/integer-ops.md (routing's formats are flattened into
int / int[] arguments in :class:`RoutingQuantization` field order). Registration happens once per process,
on first import; re-importing or reloading this module finds the ops and leaves them alone.
"""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.ops.operands import storage_dtype
from capsnet_nncf_plugin.ops.routing import check_routing_arguments, int_dynamic_routing
from capsnet_nncf_plugin.ops.routing_quantization import RoutingQuantization
from capsnet_nncf_plugin.ops.squash import check_squash_arguments, int_squash

NAMESPACE = "capsnet"
INT_SQUASH_SCHEMA = "(Tensor s, int exponent_in, int bits_out, int dim=-1) -> Tensor"
INT_DYNAMIC_ROUTING_SCHEMA = (
    "(Tensor votes, int iterations, int votes_exponent, int votes_bits, int[] coupling_bits, "
    "int[] pre_exponents, int[] pre_bits, int[] out_bits, int[] logit_exponents, int[] logit_bits) -> Tensor"
)


def _routing_params(
    iterations: int,
    votes_exponent: int,
    votes_bits: int,
    coupling_bits: list[int],
    pre_exponents: list[int],
    pre_bits: list[int],
    out_bits: list[int],
    logit_exponents: list[int],
    logit_bits: list[int],
) -> RoutingQuantization:
    return RoutingQuantization(
        iterations=iterations,
        votes_exponent=votes_exponent,
        votes_bits=votes_bits,
        coupling_bits=tuple(coupling_bits),
        pre_exponents=tuple(pre_exponents),
        pre_bits=tuple(pre_bits),
        out_bits=tuple(out_bits),
        logit_exponents=tuple(logit_exponents),
        logit_bits=tuple(logit_bits),
    )


def _squash_kernel(s: torch.Tensor, exponent_in: int, bits_out: int, dim: int = -1) -> torch.Tensor:
    return int_squash(s, exponent_in, bits_out, dim)


def _squash_fake(s: torch.Tensor, exponent_in: int, bits_out: int, dim: int = -1) -> torch.Tensor:
    check_squash_arguments(s, exponent_in, bits_out, dim)
    return s.new_empty(s.shape, dtype=storage_dtype(bits_out, signed=True))


def _routing_kernel(votes: torch.Tensor, *formats: int | list[int]) -> torch.Tensor:
    return int_dynamic_routing(votes, _routing_params(*formats))


def _routing_fake(votes: torch.Tensor, *formats: int | list[int]) -> torch.Tensor:
    params = _routing_params(*formats)
    check_routing_arguments(votes, params)
    batch, _, outputs, capsule_dim = votes.shape
    return votes.new_empty(
        (batch, outputs, capsule_dim), dtype=storage_dtype(params.output_bits, signed=True)
    )


def _is_registered(name: str) -> bool:
    return hasattr(getattr(torch.ops, NAMESPACE), name)


def register_ops() -> None:
    """Define the ``capsnet::*`` ops with their reference and fake kernels, unless already defined."""
    for name, schema, kernel, fake in (
        ("int_squash", INT_SQUASH_SCHEMA, _squash_kernel, _squash_fake),
        ("int_dynamic_routing", INT_DYNAMIC_ROUTING_SCHEMA, _routing_kernel, _routing_fake),
    ):
        if _is_registered(name):
            continue
        op = torch.library.custom_op(f"{NAMESPACE}::{name}", kernel, mutates_args=(), schema=schema)
        op.register_fake(fake)


register_ops()
