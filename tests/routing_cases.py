"""Routing cases shared by the torch-reference tests (tests/ops) and the onnxruntime tests (tests/runtime)."""

from __future__ import annotations

import math

import torch

from capsnet_nncf_plugin.nn.functional import squash
from capsnet_nncf_plugin.ops import RoutingQuantization


def covering_exponent(max_abs: float, bits: int) -> int:
    """Smallest exponent whose signed ``bits`` range covers ``max_abs``, clamped to the ops' -31..6."""
    if max_abs <= 0:
        return -(bits - 1)
    return min(6, max(-31, math.ceil(math.log2(max_abs / ((1 << (bits - 1)) - 1)))))


def calibrated_routing(votes: torch.Tensor, bits: int, iterations: int = 3, coupling_bits: int | None = None):
    """Quantize float votes ``[N, I, J, D]`` and derive every routing format from one float pass, like a
    min-max calibration: formats whose integers carry real values rather than saturating."""
    votes_exponent = covering_exponent(float(votes.abs().max()), bits)
    limit = 1 << (bits - 1)
    quantized = torch.clamp(torch.round(votes * 2.0**-votes_exponent), -limit, limit - 1)
    dequantized = quantized * 2.0**votes_exponent
    logits = dequantized.new_zeros(dequantized.shape[:3])
    pre_exponents, logit_exponents = [], []
    for iteration in range(iterations):
        pre = (torch.softmax(logits, dim=2).unsqueeze(-1) * dequantized).sum(dim=1)
        pre_exponents.append(covering_exponent(float(pre.abs().max()), bits))
        if iteration < iterations - 1:
            logits = logits + (dequantized * squash(pre).unsqueeze(1)).sum(dim=-1)
            logit_exponents.append(covering_exponent(float(logits.abs().max()), bits))
    coupling = coupling_bits or bits
    params = RoutingQuantization(
        iterations,
        votes_exponent,
        bits,
        [coupling] * iterations,
        pre_exponents,
        [bits] * iterations,
        [bits] * iterations,
        logit_exponents,
        [bits] * (iterations - 1),
    )
    dtype = torch.int8 if bits <= 8 else torch.int16
    return quantized.to(dtype), dequantized, params


def agreeing_votes(shape, scale: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Float votes where each sample has one output capsule the inputs agree on, the others mostly noise.

    Returns the votes (float64) and, per sample, the index of that output capsule.
    """
    batch, _, outputs, dim = shape
    direction = torch.nn.functional.normalize(
        torch.randn(batch, 1, outputs, dim, generator=generator), dim=-1
    )
    agreement = torch.rand(batch, 1, outputs, 1, generator=generator) * 0.6
    winners = torch.randint(0, outputs, (batch,), generator=generator)
    agreement[torch.arange(batch), 0, winners] = 1.0
    noise = torch.randn(shape, generator=generator) / math.sqrt(dim)
    return (scale * (agreement * direction + (1 - 0.8 * agreement) * noise)).double(), winners


def uniform_routing(
    bits: int, votes_exponent: int, pre_exponent: int, logit_exponent: int, iterations: int = 3
) -> RoutingQuantization:
    """Routing formats with every tensor at ``bits`` and one exponent each for votes, s and b."""
    return RoutingQuantization(
        iterations,
        votes_exponent,
        bits,
        [bits] * iterations,
        [pre_exponent] * iterations,
        [bits] * iterations,
        [bits] * iterations,
        [logit_exponent] * (iterations - 1),
        [bits] * (iterations - 1),
    )
