"""Integer softmax: a hand-worked vector, accuracy against float softmax, exact special cases, errors."""

import pytest
import torch

from capsnet_nncf_plugin.ops import int_softmax


def test_hand_worked_three_logits():
    # b = [2, 0, -2] at e = -1 (logits 1, 0, -1), 8 bits out.
    # x = max - b = [0, 2, 4]; x * LOG2E_Q24 = [0, 48408812, 96817624]; shift 8 - e = 9 (round half away):
    #   z = [0, 94548.46 -> 94548, 189096.92 -> 189097]   (base-2 exponents with 16 fractional bits)
    # z = 94548:  k = 1, hi = 113, lo = 84; 790721137 * 1072788300 / 2^31 = 395009473.12 -> E = 395009473
    # z = 189097: k = 2, hi = 226, lo = 169; 582300049 * 1071824286 / 2^32 = 145315037.63 -> E = 145315038
    # z = 0: E = 2^30 = 1073741824. Z = 1614066335.
    # C = round(E * 256 / Z) = [170.30 -> 170, 62.65 -> 63, 23.05 -> 23]
    # Float: softmax([1, 0, -1]) * 256 = [170.30, 62.65, 23.05].
    result = int_softmax(torch.tensor([2, 0, -2], dtype=torch.int16), -1, 8)
    assert result.dtype == torch.uint8
    assert result.tolist() == [170, 63, 23]


@pytest.mark.parametrize(
    ("length", "bits", "expected"),
    [
        (10, 8, 26),  # 25.6
        (3, 8, 85),  # 85.33
        (10, 16, 6554),  # 6553.6
        (32, 8, 8),
        (8, 2, 1),  # 4 / 8 = 0.5: a tie, away from zero
        (1, 8, 255),  # 1.0 saturates
        (1, 16, 65535),
    ],
)
def test_uniform_logits_give_exactly_the_rounded_uniform_coupling(length, bits, expected):
    for exponent in (-31, 0, 6):
        logits = torch.full((4, length), -7, dtype=torch.int16)
        assert int_softmax(logits, exponent, bits).tolist() == [[expected] * length] * 4


def test_large_logit_differences_give_exactly_zero_and_the_maximum():
    logits = torch.tensor([[100, -100, -32768], [-32768, 32767, 0]], dtype=torch.int32)
    assert int_softmax(logits, 0, 8).tolist() == [[255, 0, 0], [0, 255, 0]]
    assert int_softmax(logits, 6, 16).tolist() == [[65535, 0, 0], [0, 65535, 0]]


@pytest.mark.parametrize("bits", [2, 4, 8, 12, 16])
def test_close_to_float_softmax(bits):
    generator = torch.Generator().manual_seed(bits)
    unsaturated, saturated, sums = [], [], []
    for exponent in (-31, -14, -10, -8, -6, -4, -2, 0, 3, 6):
        for length in (2, 10, 32):
            logits = torch.randint(-(1 << 15), 1 << 15, (200, length), generator=generator)
            logits = logits >> torch.randint(0, 16, (200, 1), generator=generator)  # spread the ranges
            result = int_softmax(logits, exponent, bits).double()
            exact = torch.softmax(logits.double() * 2.0**exponent, dim=-1) * 2.0**bits
            top = result == (1 << bits) - 1
            unsaturated.append((result - exact).abs()[~top])
            saturated.append((result - exact).abs()[top])
            sums.append((result.sum(-1) - 2**bits).abs() - length / 2)
    # Bound: half an LSB of rounding plus 2^bits * 3e-6 from the 16-bit exponent fraction (docs).
    assert float(torch.cat(unsaturated).max()) <= 0.5 + 2.0**bits * 3e-6
    assert float(torch.cat(saturated).max()) <= 1.0
    # Each coefficient rounds on its own: the sum is within half an LSB per entry (plus saturation).
    assert float(torch.cat(sums).max()) <= 1.0


def test_softmax_along_a_middle_dim():
    logits = torch.randint(-500, 500, (2, 7, 3), dtype=torch.int16)
    along_middle = int_softmax(logits, -6, 8, dim=1)
    assert torch.equal(along_middle, int_softmax(logits.transpose(1, 2), -6, 8).transpose(1, 2))


def test_empty_and_storage_dtypes():
    assert int_softmax(torch.zeros(0, 10, dtype=torch.int16), 0, 8).shape == (0, 10)
    assert int_softmax(torch.zeros(2, 10, dtype=torch.int8), 0, 12).dtype == torch.int32


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((torch.zeros(2, 3, dtype=torch.int16), 0, 1), "bits_out must be an integer in 2..16"),
        ((torch.zeros(2, 3, dtype=torch.int16), -40, 8), "exponent_in=-40 is outside"),
        ((torch.zeros(2, 3), 0, 8), "b has dtype torch.float32"),
        ((torch.full((2, 3), -40000, dtype=torch.int32), 0, 8), "outside the signed 16-bit range"),
        ((torch.tensor(1, dtype=torch.int16), 0, 8), "b is a scalar"),
    ],
)
def test_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        int_softmax(*arguments)
