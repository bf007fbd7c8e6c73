import math

import pytest
import torch

from capsnet_nncf_plugin.core import (
    MAX_EXPONENT,
    MIN_EXPONENT,
    check_bits,
    dequantize,
    fake_quantize,
    power_of_two,
    quant_range,
    quantize,
)


@pytest.mark.parametrize(
    ("bits", "signed", "expected"),
    [
        (2, True, (-2, 1)),
        (2, False, (0, 3)),
        (4, True, (-8, 7)),
        (4, False, (0, 15)),
        (8, True, (-128, 127)),
        (8, False, (0, 255)),
        (16, True, (-32768, 32767)),
        (16, False, (0, 65535)),
    ],
)
def test_quant_range(bits, signed, expected):
    assert quant_range(bits, signed) == expected


@pytest.mark.parametrize("bits", [1, 17, 0, -8, True, 8.0, "8"])
def test_bit_widths_outside_2_to_16_are_rejected_naming_the_argument_and_range(bits):
    with pytest.raises(ValueError, match=r"bits must be an integer in 2\.\.16"):
        quant_range(bits, signed=True)
    with pytest.raises(ValueError, match=r"weight_bits must be an integer in 2\.\.16"):
        check_bits(bits, "weight_bits")


def test_power_of_two_is_exact_over_the_whole_normal_float32_range():
    exponents = torch.arange(-126, 128)
    powers = power_of_two(exponents)
    assert powers.dtype == torch.float32
    assert [float(power) for power in powers] == [math.ldexp(1.0, int(e)) for e in exponents]
    mantissa, exponent = torch.frexp(powers)
    assert bool((mantissa == 0.5).all())
    assert torch.equal(exponent, (exponents + 1).to(torch.int32))
    assert float(power_of_two(0)) == 1.0
    with pytest.raises(ValueError, match=r"-126\.\.127"):
        power_of_two(128)


def test_quantize_rounds_half_to_even():
    halves = torch.tensor([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 0.49999997, 0.50000006])
    assert quantize(halves, 0, 8, signed=True).tolist() == [0, 2, 2, 4, 0, -2, -2, 0, 1]
    # With exponent -2 the codes are x * 4: 0.125 -> 0.5 -> 0, 0.375 -> 1.5 -> 2, 0.625 -> 2.5 -> 2.
    assert quantize(torch.tensor([0.125, 0.375, 0.625]), -2, 8, signed=False).tolist() == [0, 2, 2]


def test_quantize_saturates_to_the_integer_range():
    # 4-bit signed with exponent -1: codes are round(2x) clamped to -8..7.
    values = torch.tensor([3.5, 3.75, 100.0, -4.0, -4.25, -1e30])
    assert quantize(values, -1, 4, signed=True).tolist() == [7, 7, 7, -8, -8, -8]
    # 4-bit unsigned: negatives become 0, everything past 15 steps becomes 15.
    values = torch.tensor([-1.0, -0.2, 7.5, 7.75, 8.0])
    assert quantize(values, -1, 4, signed=False).tolist() == [0, 0, 15, 15, 15]


def test_quantize_never_returns_negative_zero():
    codes = quantize(torch.tensor([-0.3, -0.0, -1e-20]), 0, 8, signed=True)
    assert codes.tolist() == [0, 0, 0]
    assert not bool(torch.signbit(codes).any())


def test_dequantize_and_fake_quantize_hand_computed():
    codes = torch.tensor([-8.0, -1.0, 0.0, 3.0, 7.0])
    assert dequantize(codes, -3).tolist() == [-1.0, -0.125, 0.0, 0.375, 0.875]
    assert dequantize(codes.to(torch.int8), 2).tolist() == [-32.0, -4.0, 0.0, 12.0, 28.0]
    # 0.3 * 8 = 2.4 -> 2 -> 0.25; 0.32 * 8 = 2.56 -> 3 -> 0.375; 2.0 saturates at 7/8.
    assert fake_quantize(torch.tensor([0.3, 0.32, 2.0]), -3, 4, signed=True).tolist() == [0.25, 0.375, 0.875]


def test_sixteen_bit_codes_round_trip_exactly():
    codes = torch.arange(-32768, 32768, dtype=torch.float32)
    values = codes * 2.0**-10
    assert torch.equal(quantize(values, -10, 16, signed=True), codes)
    assert torch.equal(fake_quantize(values, -10, 16, signed=True), values)


def test_the_extreme_supported_exponents_stay_exact_and_finite():
    smallest = torch.tensor([1.0, 2.0, 3.0]) * 2.0**MIN_EXPONENT
    assert quantize(smallest, MIN_EXPONENT, 8, signed=False).tolist() == [1, 2, 3]
    assert torch.equal(fake_quantize(smallest, MIN_EXPONENT, 8, signed=False), smallest)
    largest = torch.tensor([65535.0]) * 2.0**MAX_EXPONENT
    assert quantize(largest, MAX_EXPONENT, 16, signed=False).tolist() == [65535]
    assert bool(torch.isfinite(fake_quantize(largest, MAX_EXPONENT, 16, signed=False)).all())


@pytest.mark.parametrize("exponent", [MIN_EXPONENT - 1, MAX_EXPONENT + 1, 1.5, True, torch.tensor([0.5])])
def test_unsupported_exponents_are_rejected(exponent):
    with pytest.raises(ValueError, match="exponent"):
        quantize(torch.ones(3), exponent, 8, signed=True)


def test_float64_input_is_computed_in_float64_and_half_precision_keeps_its_dtype():
    values = torch.tensor([0.1, 0.2], dtype=torch.float64)
    assert quantize(values, -4, 8, signed=True).dtype == torch.float64
    assert fake_quantize(values, -4, 8, signed=True).tolist() == [0.125, 0.1875]
    # 2**20 overflows float16; the arithmetic runs in float32 and only the result is cast back.
    half = torch.tensor([2.0**-20, 2.0**-19], dtype=torch.float16)
    assert fake_quantize(half, -20, 8, signed=False).dtype == torch.float16
    assert quantize(half, -20, 8, signed=False).tolist() == [1, 2]


def test_four_bit_fake_quantize_has_at_most_16_values_on_the_power_of_two_grid():
    values = torch.randn(10_000, generator=torch.Generator().manual_seed(0))
    output = fake_quantize(values, -2, 4, signed=True)
    distinct = torch.unique(output)
    assert distinct.numel() <= 16
    assert torch.equal(distinct * 4, torch.round(distinct * 4))
    assert float(distinct.min()) >= -2.0 and float(distinct.max()) <= 1.75


def test_per_channel_matches_per_tensor_slice_by_slice():
    values = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(1)) * 3
    exponents = torch.tensor([0, -1, -3], dtype=torch.int32)
    output = fake_quantize(values, exponents, 4, signed=True, axis=0)
    for channel in range(3):
        expected = fake_quantize(values[channel], int(exponents[channel]), 4, signed=True)
        assert torch.equal(output[channel], expected)
    columns = fake_quantize(values, torch.tensor([1, 0, -1, -2, -3]), 8, signed=False, axis=-2)
    assert torch.equal(columns[:, 2], fake_quantize(values[:, 2], -1, 8, signed=False))
    codes = quantize(values, exponents, 4, signed=True, axis=0)
    assert torch.equal(dequantize(codes, exponents, axis=0), output)


def test_per_channel_exponent_count_and_axis_are_checked():
    with pytest.raises(ValueError, match="needs 3 exponents"):
        quantize(torch.ones(3, 2), torch.tensor([0, 0]), 8, signed=True, axis=0)
    with pytest.raises(ValueError, match="pass axis="):
        quantize(torch.ones(3, 2), torch.tensor([0, 0, 0]), 8, signed=True)
