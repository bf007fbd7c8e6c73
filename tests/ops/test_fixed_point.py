"""Rounding shifts, rounding division, saturation and bit lengths against exact Python arithmetic."""

import random
from fractions import Fraction

import pytest
import torch

from capsnet_nncf_plugin.core.integer_format import quant_range
from capsnet_nncf_plugin.ops.fixed_point import (
    bit_length,
    requantize,
    round_shift,
    rounded_divide,
    saturate,
)


def half_away(value: Fraction) -> int:
    magnitude = int(abs(value) + Fraction(1, 2))  # floor of a non-negative Fraction
    return magnitude if value >= 0 else -magnitude


def test_round_shift_rounds_ties_away_from_zero():
    values = torch.tensor([5, -5, 6, -6, 7, -7, 1, -1, 3, -3, 0])
    # 2.5 -> 3, -2.5 -> -3, 3, -3, 3.5 -> 4, -3.5 -> -4, 0.5 -> 1, -0.5 -> -1, 1.5 -> 2, -1.5 -> -2, 0
    assert round_shift(values, 1).tolist() == [3, -3, 3, -3, 4, -4, 1, -1, 2, -2, 0]


def test_round_shift_left_shifts_exactly_for_non_positive_shifts():
    values = torch.tensor([3, -3, 0])
    assert round_shift(values, 0).tolist() == [3, -3, 0]
    assert round_shift(values, -4).tolist() == [48, -48, 0]


def test_round_shift_matches_exact_rounding_at_every_shift():
    generator = random.Random(0)
    values = [generator.randrange(-(1 << 61), 1 << 61) >> generator.randrange(62) for _ in range(300)]
    values += [1 << 61, -(1 << 61), (1 << 62) - 1, -((1 << 62) - 1)]
    tensor = torch.tensor(values)
    for shift in range(1, 63):
        expected = [half_away(Fraction(value, 1 << shift)) for value in values]
        assert round_shift(tensor, shift).tolist() == expected, shift


def test_round_shift_per_element_shifts_match_scalar_shifts():
    values = torch.tensor([1000, -1000, 77, -77, 12345])
    shifts = torch.tensor([3, 3, -2, 0, 10])
    expected = [round_shift(values[i : i + 1], int(shifts[i])).item() for i in range(5)]
    assert round_shift(values, shifts).tolist() == expected


def test_round_shift_rejects_shifts_beyond_62():
    with pytest.raises(ValueError, match="shift"):
        round_shift(torch.tensor([1]), 63)
    with pytest.raises(ValueError, match="shift"):
        round_shift(torch.tensor([1]), torch.tensor([-63]))


def test_rounded_divide_is_one_exact_rounding():
    generator = random.Random(1)
    numerators, denominators, shifts = [], [], []
    for _ in range(2000):
        numerators.append(generator.randrange(-(1 << 61), 1 << 61) >> generator.randrange(61))
        denominators.append(max(1, generator.randrange(1 << 62) >> generator.randrange(62)))
        shifts.append(generator.randrange(31))
    # Exact ties: 2k+1 over 2, with and without a shift.
    numerators += [5, -5, 3 * 7, -(3 * 7), 1, 12 << 4]
    denominators += [2, 2, 14, 14, 2, 8]
    shifts += [0, 0, 0, 0, 0, 4]
    result = rounded_divide(torch.tensor(numerators), torch.tensor(denominators), torch.tensor(shifts))
    expected = [
        half_away(Fraction(n, d << s)) for n, d, s in zip(numerators, denominators, shifts, strict=True)
    ]
    assert result.tolist() == expected
    assert expected[-6:] == [3, -3, 2, -2, 1, 2]


def test_rounded_divide_takes_int_denominator_and_shift():
    assert rounded_divide(torch.tensor([7, -7, 9]), 6, 1).tolist() == [1, -1, 1]  # 0.58, -0.58, 0.75


def test_quant_range_and_saturate():
    assert quant_range(8, signed=True) == (-128, 127)
    assert quant_range(8, signed=False) == (0, 255)
    assert quant_range(2, signed=True) == (-2, 1)
    assert quant_range(16, signed=False) == (0, 65535)
    values = torch.tensor([-1000, -128, 0, 127, 1000])
    assert saturate(values, 8, signed=True).tolist() == [-128, -128, 0, 127, 127]
    assert saturate(values, 8, signed=False).tolist() == [0, 0, 0, 127, 255]
    # A rescale: 1000 / 2^3 = 125, -1000 / 8 = -125, 12.5 -> 13 then saturate to 4 bits (7).
    assert requantize(torch.tensor([1000, -1000, 100]), 3, 4, signed=True).tolist() == [7, -8, 7]


@pytest.mark.parametrize("bits", [1, 17, True, 8.0])
def test_quant_range_rejects_unsupported_bits(bits):
    with pytest.raises(ValueError, match=r"bits must be an integer in 2\.\.16"):
        quant_range(bits, signed=True)


def test_bit_length_matches_python():
    values = [0, 1, 2, 3, 4, 255, 256, (1 << 36) - 1, 1 << 36, (1 << 62) - 1, 1 << 62, (1 << 63) - 1]
    assert bit_length(torch.tensor(values)).tolist() == [value.bit_length() for value in values]
