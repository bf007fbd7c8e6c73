"""Integer squash: hand-worked values, accuracy against float squash, edge cases and argument errors."""

import pytest
import torch

from capsnet_nncf_plugin.nn.functional import squash
from capsnet_nncf_plugin.ops import int_squash


def exact_squash_lsb(s: torch.Tensor, exponent: int, bits_out: int) -> torch.Tensor:
    """``squash(s * 2^e) * 2^(bits_out - 1)`` in float64 without the eps: the value V rounds."""
    x = s.double() * 2.0**exponent
    squared_norm = (x * x).sum(-1, keepdim=True)
    return x * squared_norm.sqrt() / (1 + squared_norm) * 2.0 ** (bits_out - 1)


def test_hand_worked_three_four():
    # s = [3, 4], e = 0, 8 bits (K = 7). N2 = 25, bit_length 5, F = (62 - 5) >> 1 = 28,
    # R = isqrt(25 * 4^28) = 5 * 2^28 (exact). A = 4^0 + 25 = 26, c = K - F = -21.
    # V = round(|s| * 5 * 2^28 / (26 * 2^21)) = round(|s| * 640 / 26):
    #   3 -> 1920 / 26 = 73.85 -> 74;  4 -> 2560 / 26 = 98.46 -> 98.
    # Float: squash([3, 4]) = [3, 4] * 5 / 26 = [0.5769, 0.7692]; x 128 = [73.85, 98.46].
    result = int_squash(torch.tensor([3, 4], dtype=torch.int8), 0, 8)
    assert result.dtype == torch.int8
    assert result.tolist() == [74, 98]


def test_hand_worked_negative_exponent_sixteen_bits():
    # s = [-3, 4], e = -2 (values -0.75, 1.0), 16 bits (K = 15). N2 = 25, F = 28, R = 5 * 2^28,
    # m = 2: A = 4^2 + 25 = 41, c = 15 - 28 = -13. V = round(|s| * 5 * 2^15 / 41):
    #   3 -> 491520 / 41 = 11988.29 -> 11988 (negative: -11988);  4 -> 655360 / 41 = 15984.39 -> 15984.
    result = int_squash(torch.tensor([-3, 4], dtype=torch.int16), -2, 16)
    assert result.dtype == torch.int16
    assert result.tolist() == [-11988, 15984]


def test_exact_ties_round_half_away_from_zero():
    # N2 = 4 + 126^2 + 22^2 + 4^2 + 2^2 = 16384 = 4^7 and e = -7: the norm is exactly 1, so squash halves
    # the vector: V = s * 2^-7 / 2 * 2^7 = s / 2. The ones give exact ties 0.5 -> 1 and -0.5 -> -1
    # (half-to-even would give 0).
    s = torch.tensor([1, -1, 1, -1, 126, 22, 4, 2])
    assert int_squash(s, -7, 8).tolist() == [1, -1, 1, -1, 63, 11, 2, 1]
    # 2-bit output, norm 1 again: [0.5, ...] * 1/2 * 2^1 = 0.5 -> 1.
    assert int_squash(torch.tensor([1, -1, 1, -1]), -1, 2).tolist() == [1, -1, 1, -1]


def test_saturates_to_the_output_range():
    # |s| = 32767 at e = 0: v = 1 - 9.3e-10, 128 v rounds to 128 and saturates to 127; -128 fits.
    assert int_squash(torch.tensor([[32767], [-32768]], dtype=torch.int16), 0, 8).tolist() == [[127], [-128]]


def test_zero_vectors_give_zero():
    assert int_squash(torch.zeros(3, 16, dtype=torch.int16), -31, 16).abs().sum() == 0


@pytest.mark.parametrize("bits_out", [2, 4, 8, 12, 16])
def test_within_half_an_lsb_of_the_exact_squash(bits_out):
    generator = torch.Generator().manual_seed(bits_out)
    errors, worst_saturated = [], 0.0
    for exponent in (-31, -20, -12, -8, -4, -2, -1, 0, 1, 3, 6):
        for magnitude_bits in (1, 3, 8, 12, 16):
            high = 1 << (magnitude_bits - 1)
            s = torch.randint(-high, high, (64, 16), generator=generator)
            result = int_squash(s, exponent, bits_out).double()
            exact = exact_squash_lsb(s, exponent, bits_out)
            saturated = result == (1 << (bits_out - 1)) - 1
            errors.append((result - exact).abs()[~saturated])
            saturated_errors = (result - exact).abs()[saturated]
            if saturated_errors.numel():
                worst_saturated = max(worst_saturated, float(saturated_errors.max()))
    # Correct rounding up to the root's 2^-30 relative error; saturation of ~1.0 costs less than 1 LSB.
    assert float(torch.cat(errors).max()) <= 0.5 + 2**-14
    assert worst_saturated < 1.0


def test_within_one_lsb_of_the_project_float_squash():
    # Realistic pre-activations: |s| of a few units at 8 bits, fractions at 16 bits.
    generator = torch.Generator().manual_seed(7)
    for bits, exponent in ((8, -4), (16, -12)):
        s = torch.randint(-(1 << (bits - 1)), 1 << (bits - 1), (256, 16), generator=generator)
        s[:64] //= 64  # short vectors too, where squash is far from saturating
        result = int_squash(s, exponent, bits).double()
        reference = squash(s.double() * 2.0**exponent) * 2.0 ** (bits - 1)
        assert float((result - reference).abs().max()) <= 1.0


def test_adversarial_extremes():
    # The largest N2 (64 components of -2^15: 2^36), the smallest (a single 1) and the exponent limits.
    full = torch.full((1, 64), -(1 << 15), dtype=torch.int32)
    single = torch.zeros(1, 64, dtype=torch.int32)
    single[0, 5] = 1
    mixed = torch.tensor([[(1 << 15) - 1] + [-(1 << 15)] * 63], dtype=torch.int32)
    for s in (full, single, mixed):
        for exponent in (-31, -15, -7, 0, 6):
            for bits_out in (2, 8, 16):
                result = int_squash(s, exponent, bits_out).double()
                error = (result - exact_squash_lsb(s, exponent, bits_out)).abs()
                assert float(error.max()) < 1.0, (exponent, bits_out)


def test_squashes_along_any_dim():
    s = torch.randint(-100, 100, (3, 16, 10), dtype=torch.int16)
    along_middle = int_squash(s, -5, 8, dim=1)
    assert torch.equal(along_middle, int_squash(s.transpose(1, 2), -5, 8).transpose(1, 2))
    assert torch.equal(int_squash(s, -5, 8, dim=-2), along_middle)


def test_empty_batch():
    result = int_squash(torch.zeros(0, 10, 16, dtype=torch.int16), -8, 8)
    assert result.shape == (0, 10, 16)
    assert result.dtype == torch.int8


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((torch.zeros(2, 16, dtype=torch.int16), 0, 1), "bits_out must be an integer in 2..16"),
        ((torch.zeros(2, 16, dtype=torch.int16), 0, 17), "bits_out must be an integer in 2..16"),
        ((torch.zeros(2, 16, dtype=torch.int16), -32, 8), "exponent_in=-32 is outside"),
        ((torch.zeros(2, 16, dtype=torch.int16), 7, 8), "exponent_in=7 is outside"),
        ((torch.zeros(2, 65, dtype=torch.int16), 0, 8), "capsule dimension 65"),
        ((torch.zeros(2, 0, dtype=torch.int16), 0, 8), "capsule dimension 0"),
        ((torch.zeros(2, 16), 0, 8), "s has dtype torch.float32"),
        ((torch.zeros(2, 16, dtype=torch.uint8), 0, 8), "s has dtype torch.uint8"),
        ((torch.full((2, 16), 1 << 15, dtype=torch.int32), 0, 8), "outside the signed 16-bit range"),
        ((torch.tensor(3, dtype=torch.int16), 0, 8), "s is a scalar"),
    ],
)
def test_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        int_squash(*arguments)


def test_rejects_a_dim_outside_the_tensor():
    with pytest.raises(ValueError, match="dim=2 is not a dimension"):
        int_squash(torch.zeros(2, 16, dtype=torch.int16), 0, 8, dim=2)
