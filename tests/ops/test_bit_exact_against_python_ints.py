"""The vectorised torch ops equal a second, deliberately naive implementation bit for bit.

The implementation below uses Python's unbounded ints and exact ``Fraction`` arithmetic with loops, written
straight from the formulas of docs/integer-ops.md: no shifts, no int64 bounds, no case splits on the sign
of the exponent. Agreement on random and extreme inputs shows that the torch code's rearrangements
(normalised roots, shift-after-divide, clamped shifts, aligned sums) change no result.
"""

import math
import random
from fractions import Fraction

import pytest
import torch
from routing_cases import uniform_routing

from capsnet_nncf_plugin.ops import (
    EXP2_COARSE,
    EXP2_FINE,
    LOG2E_Q24,
    RoutingQuantization,
    check_routing_bounds,
    int_dynamic_routing,
    int_softmax,
    int_squash,
)

# ---------------------------------------------------------------- the Python-int reference


def round_half_away(value: Fraction) -> int:
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def clamp(value: int, bits: int, signed: bool) -> int:
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return min(max(value, low), high)


def python_squash(vector: list[int], exponent: int, bits: int) -> list[int]:
    """V_d = round(s_d * R / 2^F * 4^e / (1 + N2 * 4^e) * 2^K), R = isqrt(N2 * 4^F), F from N2's bits."""
    squared_norm = sum(value * value for value in vector)
    if squared_norm == 0:
        return [0] * len(vector)
    fraction_bits = (62 - squared_norm.bit_length()) // 2
    root = math.isqrt(squared_norm * 4**fraction_bits)
    scale = Fraction(4) ** exponent
    factor = Fraction(root, 2**fraction_bits) * scale / (1 + squared_norm * scale) * 2 ** (bits - 1)
    return [clamp(round_half_away(value * factor), bits, signed=True) for value in vector]


def python_softmax(logits: list[int], exponent: int, bits: int) -> list[int]:
    """E = round(2^30 * COARSE[hi] * FINE[lo] / 2^(60 + k)) for z = round((max - b) * L * 2^(e - 8))."""
    top = max(logits)
    exponentials = []
    for logit in logits:
        z = round_half_away((top - logit) * LOG2E_Q24 * Fraction(2) ** (exponent - 8))
        integer_part, fraction = divmod(z, 65536)  # no clamp of k here: large k must give 0 anyway
        high, low = divmod(fraction, 256)
        exponentials.append(
            round_half_away(Fraction(EXP2_COARSE[high] * EXP2_FINE[low], 2 ** (30 + integer_part)))
        )
    total = sum(exponentials)
    return [clamp(round_half_away(Fraction(e * 2**bits, total)), bits, signed=False) for e in exponentials]


def python_routing(votes: list, params: RoutingQuantization) -> list:
    """Routing with exact rational rescaling: each requantization is one rounding of the exact value."""
    outputs_all = []
    for sample in votes:  # [I][J][D]
        inputs, outputs, dim = len(sample), len(sample[0]), len(sample[0][0])
        logits, logit_exponent = [[0] * outputs for _ in range(inputs)], 0
        for t in range(params.iterations):
            coupling = [python_softmax(row, logit_exponent, params.coupling_bits[t]) for row in logits]
            rescale = Fraction(2) ** (
                params.votes_exponent - params.coupling_bits[t] - params.pre_exponents[t]
            )
            pre = [
                [
                    clamp(
                        round_half_away(
                            sum(coupling[i][j] * sample[i][j][d] for i in range(inputs)) * rescale
                        ),
                        params.pre_bits[t],
                        signed=True,
                    )
                    for d in range(dim)
                ]
                for j in range(outputs)
            ]
            squashed = [
                python_squash(pre[j], params.pre_exponents[t], params.out_bits[t]) for j in range(outputs)
            ]
            if t == params.iterations - 1:
                break
            agreement_scale = Fraction(2) ** (params.votes_exponent - (params.out_bits[t] - 1))
            new_exponent = params.logit_exponents[t]
            logits = [
                [
                    clamp(
                        round_half_away(
                            (
                                logits[i][j] * Fraction(2) ** logit_exponent
                                + sum(sample[i][j][d] * squashed[j][d] for d in range(dim)) * agreement_scale
                            )
                            / Fraction(2) ** new_exponent
                        ),
                        params.logit_bits[t],
                        signed=True,
                    )
                    for j in range(outputs)
                ]
                for i in range(inputs)
            ]
            logit_exponent = new_exponent
        outputs_all.append(squashed)
    return outputs_all


# ---------------------------------------------------------------- comparisons


def random_signed(generator: random.Random, bits: int) -> int:
    limit = 2 ** (bits - 1)
    # Half the draws at the range's ends, where overflow and saturation live.
    if generator.random() < 0.5:
        return generator.choice([-limit, limit - 1, -limit + 1, 0])
    return generator.randrange(-limit, limit)


def test_squash_bit_exact_on_random_inputs():
    generator = random.Random(0)
    for _ in range(60):
        bits_in = generator.randint(2, 16)
        dim = generator.choice([1, 2, 3, 8, 16, 32, 64])
        exponent = generator.randint(-31, 6)
        bits_out = generator.randint(2, 16)
        rows = [[random_signed(generator, bits_in) for _ in range(dim)] for _ in range(4)]
        rows.append([generator.randint(-3, 3) for _ in range(dim)])  # short vectors, ties live here
        result = int_squash(torch.tensor(rows, dtype=torch.int32), exponent, bits_out).tolist()
        assert result == [python_squash(row, exponent, bits_out) for row in rows], (exponent, bits_out)


@pytest.mark.parametrize("bits", range(2, 17))
def test_squash_bit_exact_at_extreme_magnitudes(bits):
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    rows = [[low] * 64, [high] * 64, [low, high] * 32, [low] + [0] * 63, [1] + [0] * 63]
    for exponent in (-31, -16, -1, 0, 6):
        for bits_out in (2, bits, 16):
            result = int_squash(torch.tensor(rows, dtype=torch.int16), exponent, bits_out).tolist()
            assert result == [python_squash(row, exponent, bits_out) for row in rows]


def test_softmax_bit_exact_on_random_and_extreme_inputs():
    generator = random.Random(1)
    for _ in range(60):
        bits_in = generator.randint(2, 16)
        length = generator.choice([1, 2, 3, 10, 32])
        exponent = generator.randint(-31, 6)
        bits_out = generator.randint(2, 16)
        rows = [[random_signed(generator, bits_in) for _ in range(length)] for _ in range(4)]
        result = int_softmax(torch.tensor(rows, dtype=torch.int32), exponent, bits_out).tolist()
        assert result == [python_softmax(row, exponent, bits_out) for row in rows], (exponent, bits_out)
    extremes = [[-(2**15), 2**15 - 1], [2**15 - 1, 2**15 - 2, -(2**15)], [0, -1, -2, -3]]
    for exponent in (-31, -8, 0, 6):
        for bits_out in (2, 8, 16):
            result = [int_softmax(torch.tensor(row), exponent, bits_out).tolist() for row in extremes]
            assert result == [python_softmax(row, exponent, bits_out) for row in extremes]


def random_params(generator: random.Random, bits: int, inputs: int, dim: int) -> RoutingQuantization:
    """Formats around the natural exponents of full-range votes, some far off to force saturation."""
    iterations = generator.randint(1, 3)
    votes_exponent = generator.randint(-12, 2)
    coupling_bits = [generator.randint(2, 16) for _ in range(iterations)]
    out_bits = [generator.randint(2, 16) for _ in range(iterations)]

    def near(exponent: int) -> int:
        return min(max(exponent + generator.randint(-3, 3), -31), 6)

    # S ~ sum_I c u ~ u * I / J: about votes_exponent + bits - 1 + log2(I) - pre_bits + 1.
    pre_bits = [generator.randint(2, 16) for _ in range(iterations)]
    pre_exponents = [near(votes_exponent + bits - pre + inputs.bit_length() - 2) for pre in pre_bits]
    logit_bits = [generator.randint(2, 16) for _ in range(iterations - 1)]
    logit_exponents = [near(votes_exponent + bits + dim.bit_length() - b) for b in logit_bits]
    return RoutingQuantization(
        iterations,
        votes_exponent,
        bits,
        coupling_bits,
        pre_exponents,
        pre_bits,
        out_bits,
        logit_exponents,
        logit_bits,
    )


def test_routing_bit_exact_on_random_shapes_formats_and_votes():
    generator = random.Random(2)
    for _ in range(25):
        bits = generator.randint(2, 16)
        shape = (
            generator.randint(1, 2),
            generator.randint(1, 6),
            generator.randint(1, 5),
            generator.randint(1, 8),
        )
        params = random_params(generator, bits, shape[1], shape[3])
        votes = [
            [
                [[random_signed(generator, bits) for _ in range(shape[3])] for _ in range(shape[2])]
                for _ in range(shape[1])
            ]
            for _ in range(shape[0])
        ]
        result = int_dynamic_routing(torch.tensor(votes, dtype=torch.int32), params).tolist()
        assert result == python_routing(votes, params), params


@pytest.mark.parametrize("bits", range(2, 17))
def test_routing_bit_exact_at_extreme_magnitudes(bits):
    # Every vote at the ends of its range, every format `bits` wide, and four exponent layouts: no
    # rescaling (S and B at the product exponents), all finest, all coarsest, and the largest left shifts
    # (coarse votes, finest S and B).
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    inputs, outputs, dim = 12, 3, 64
    generator = random.Random(bits)
    votes = [
        [[[generator.choice([low, high]) for _ in range(dim)] for _ in range(outputs)] for _ in range(inputs)]
    ]
    votes[0][0] = [[low] * dim for _ in range(outputs)]
    tested = 0
    for votes_exponent, pre_exponent, logit_exponent in (
        (0, -bits, -(bits - 1)),
        (-31 + bits, -31, -31),
        (6, 6, 6),
    ):
        params = uniform_routing(bits, votes_exponent, pre_exponent, logit_exponent)
        try:
            check_routing_bounds(params, inputs, dim)
        except ValueError:
            continue  # a layout the op rejects up front; the others must run
        result = int_dynamic_routing(torch.tensor(votes, dtype=torch.int16), params).tolist()
        assert result == python_routing(votes, params)
        tested += 1
    assert tested >= 3
