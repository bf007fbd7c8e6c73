"""ONNX translations of the integer capsule ops: ``capsnet::int_squash`` -> ``capsnet.IntSquash``,
``capsnet::int_dynamic_routing`` -> ``capsnet.IntDynamicRouting`` (docs/integer-ops.md).

The torch ops and the ONNX nodes take the same arguments in the same order, so a translation only renames
them; the arithmetic behind both is the one of :mod:`capsnet_nncf_plugin.ops` (torch) and ``csrc/`` (C++).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

import capsnet_nncf_plugin.ops  # noqa: F401  (registers torch.ops.capsnet.*)
from capsnet_nncf_plugin.onnx_domain.schemas import (
    DOMAIN,
    DOMAIN_VERSION,
    INT_DYNAMIC_ROUTING,
    INT_SQUASH,
    register_schemas,
)


def onnx_translations() -> dict[Callable, Callable]:
    """``custom_translation_table`` entries for the capsule ops (onnxscript imported only when exporting)."""
    import onnxscript

    register_schemas()
    capsnet = onnxscript.values.Opset(DOMAIN, DOMAIN_VERSION)

    def int_squash_onnx(s, exponent_in: int, bits_out: int, dim: int = -1):
        return getattr(capsnet, INT_SQUASH)(s, exponent_in=exponent_in, bits_out=bits_out, axis=dim)

    def int_dynamic_routing_onnx(
        votes,
        iterations: int,
        votes_exponent: int,
        votes_bits: int,
        coupling_bits: list[int],
        pre_exponents: list[int],
        pre_bits: list[int],
        out_bits: list[int],
        logit_exponents: list[int],
        logit_bits: list[int],
    ):
        updates = {"logit_exponents": logit_exponents, "logit_bits": logit_bits} if logit_bits else {}
        return getattr(capsnet, INT_DYNAMIC_ROUTING)(
            votes,
            iterations=iterations,
            votes_exponent=votes_exponent,
            votes_bits=votes_bits,
            coupling_bits=coupling_bits,
            pre_exponents=pre_exponents,
            pre_bits=pre_bits,
            out_bits=out_bits,
            **updates,
        )

    return {
        torch.ops.capsnet.int_squash.default: int_squash_onnx,
        torch.ops.capsnet.int_dynamic_routing.default: int_dynamic_routing_onnx,
    }
