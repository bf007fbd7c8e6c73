import math

import pytest
import torch

from capsnet_nncf_plugin.core import (
    MAX_EXPONENT,
    MIN_EXPONENT,
    clipping,
    coupling_coefficient_exponent,
    fake_quantize,
    fixed_exponent_for_range,
    hardware_exponent,
    minmax_exponent,
    mse_exponent,
    percentile_exponent,
    smallest_exponent_covering,
    squash_output_exponent,
)
from capsnet_nncf_plugin.core.clipping import mse_exponents, percentile_value

# 1000 evenly spread values in (0, 1) and one outlier at 8: the data every clipping mode is compared on.
BULK = (torch.arange(1000, dtype=torch.float32) + 0.5) / 1000
WITH_OUTLIER = torch.cat([BULK, torch.tensor([8.0])])


def test_coverage_is_decided_exactly_at_the_boundary():
    assert smallest_exponent_covering(127.0 * 4, 127) == 2
    assert smallest_exponent_covering(math.nextafter(127.0 * 4, math.inf), 127) == 3
    assert smallest_exponent_covering(math.nextafter(127.0 * 4, 0), 127) == 2
    assert smallest_exponent_covering(1.0, 1) == 0
    assert smallest_exponent_covering(0.75, 1) == 0
    assert smallest_exponent_covering(0.5, 1) == -1


@pytest.mark.parametrize(
    ("min_val", "max_val", "bits", "signed", "expected"),
    [
        # unsigned: smallest e with max <= qmax * 2**e
        (0.0, 255.0, 8, False, 0),
        (0.0, 256.0, 8, False, 1),
        (0.0, 1.0, 8, False, -7),  # 255 * 2**-8 = 0.996 < 1 <= 255 * 2**-7
        (-5.0, 1.0, 8, False, -7),  # negatives saturate to 0 in any unsigned scale
        (0.0, 8.0, 4, False, 0),  # 15 * 2**-1 = 7.5 < 8 <= 15
        # signed: both ends; qmin = -2**(bits-1) reaches one step further than qmax
        (-128.0, 100.0, 8, True, 0),
        (-129.0, 100.0, 8, True, 1),
        (-1.0, 127.5, 8, True, 1),
        (-1.0, 0.5, 8, True, -7),  # 1 <= 128 * 2**-7 and 0.5 <= 127 * 2**-7
        (-1.0, 1.0, 8, True, -6),  # 1 > 127 * 2**-7
        (-8.0, -2.0, 4, True, 0),  # only the negative end: 8 <= 8 * 2**0
    ],
)
def test_minmax_exponent(min_val, max_val, bits, signed, expected):
    assert minmax_exponent(min_val, max_val, bits, signed) == expected


@pytest.mark.parametrize(
    ("min_val", "max_val", "bits", "signed", "expected"),
    [
        (0.0, 255.0, 8, False, 0),  # raw pixels: scale 1, exact
        (0.0, 200.0, 8, False, 0),
        (0.0, 1.0, 8, False, -8),  # [0, 1]: scale 2**-8
        (0.0, 0.7, 8, False, -8),  # a softmax output
        (0.0, 0.5, 8, False, -9),
        (0.0, 1.0, 4, False, -4),
        (-1.0, 0.3, 8, True, -7),  # signed: 2**(bits-1) steps per side
        (-0.2, 3.0, 4, True, -1),  # ceil(log2 3) = 2, minus 3
        (0.0, 8.0, 4, False, -1),
    ],
)
def test_hardware_exponent(min_val, max_val, bits, signed, expected):
    assert hardware_exponent(min_val, max_val, bits, signed) == expected


def test_hardware_rule_represents_every_raw_pixel_exactly():
    pixels = torch.arange(256, dtype=torch.float32)
    exponent = hardware_exponent(0.0, 255.0, 8, signed=False)
    assert exponent == 0
    assert torch.equal(fake_quantize(pixels, exponent, 8, signed=False), pixels)


def test_hardware_rule_clips_at_most_the_top_step():
    # [0, 1] in 8 bits: 1.0 is one step past 255/256 and saturates there; everything below is kept.
    assert fake_quantize(torch.tensor([1.0, 0.5, 255 / 256]), -8, 8, signed=False).tolist() == [
        255 / 256,
        0.5,
        255 / 256,
    ]
    # Raw pixels in 4 bits: scale 2**4, top code 15 * 16 = 240; 255 loses less than one step.
    exponent = hardware_exponent(0.0, 255.0, 4, signed=False)
    assert exponent == 4
    output = fake_quantize(torch.arange(256, dtype=torch.float32), exponent, 4, signed=False)
    assert float(output.max()) == 240.0
    assert float((output - torch.arange(256)).abs().max()) <= 16


def test_hardware_and_minmax_differ_by_the_one_step_that_hardware_clips():
    assert minmax_exponent(0.0, 1.0, 8, signed=False) == -7
    assert hardware_exponent(0.0, 1.0, 8, signed=False) == -8


def test_routing_fixed_ranges():
    for bits in range(2, 17):
        assert coupling_coefficient_exponent(bits) == -bits
        assert squash_output_exponent(bits) == -(bits - 1)
    assert fixed_exponent_for_range(255.0, 8, signed=False) == 0
    assert fixed_exponent_for_range(6.0, 8, signed=True) == -4
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="max_abs"):
            fixed_exponent_for_range(bad, 8, signed=True)


def test_percentile_value_is_the_nearest_rank():
    values = torch.arange(1, 101, dtype=torch.float32)
    assert percentile_value(values, 90) == 90.0
    assert percentile_value(values, 90.5) == 91.0
    assert percentile_value(values, 99.99) == 100.0
    assert percentile_value(values, 0.001) == 1.0
    for bad in (0, 100.5, -1):
        with pytest.raises(ValueError, match="percentile"):
            percentile_value(values, bad)


def test_minmax_keeps_the_outlier_percentile_and_mse_clip_it():
    # minmax: 8 <= 15 * 2**0.
    assert minmax_exponent(0.0, 8.0, 4, signed=False) == 0
    # 99.9th percentile of 1001 values: rank ceil(999.999) = 1000, the largest bulk value 0.9995;
    # 15 * 2**-4 = 0.9375 < 0.9995 <= 15 * 2**-3.
    assert percentile_exponent(WITH_OUTLIER, 4, signed=False, percentile=99.9) == -3
    # The default 99.99th percentile is rank 1001: the outlier itself, so no clipping.
    assert percentile_exponent(WITH_OUTLIER, 4, signed=False) == 0
    # MSE: e=0 rounds the bulk to 0/1 (MSE ~ 1/12); e=-1 halves the step and clips the outlier to 7.5.
    assert mse_exponent(WITH_OUTLIER, 4, signed=False) == -1
    clipped = fake_quantize(WITH_OUTLIER, -1, 4, signed=False)
    assert float(clipped[-1]) == 7.5


def test_percentile_falls_back_to_the_max_when_almost_everything_is_zero():
    sparse = torch.zeros(100_000)
    sparse[7] = 3.0
    assert percentile_exponent(sparse, 8, signed=False) == minmax_exponent(0.0, 3.0, 8, signed=False)


def test_signed_percentile_uses_magnitudes_of_both_signs():
    values = torch.cat([-BULK * 4, BULK])
    # 99th percentile of |x| over 2000 values: rank 1980, i.e. 4 * 0.9795 = 3.918 <= 127 * 2**-5.
    assert percentile_exponent(values, 8, signed=True, percentile=99) == -5


def _round_half_to_even(value: float) -> int:
    return round(value)  # Python 3's round is round-half-to-even.


def _brute_force_mse_exponent(values: list[float], bits: int, signed: bool) -> int:
    """The mse rule written independently: exact minmax exponent by search, then every candidate."""
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)

    def covers(exponent: int) -> bool:
        scale = 2.0**exponent
        return all(qmin * scale <= value <= qmax * scale for value in values if signed or value > 0)

    start = next(exponent for exponent in range(-60, 60) if covers(exponent))

    def mse(exponent: int) -> float:
        scale = 2.0**exponent
        codes = [min(max(_round_half_to_even(value / scale), qmin), qmax) for value in values]
        errors = [(code * scale - value) ** 2 for code, value in zip(codes, values, strict=True)]
        return sum(errors) / len(errors)

    best = start
    for exponent in range(start, start - bits - 1, -1):
        if mse(exponent) < mse(best):
            best = exponent
    return best


@pytest.mark.parametrize(
    ("bits", "signed", "seed"), [(3, True, 0), (4, False, 1), (6, True, 2), (8, False, 3)]
)
def test_mse_exponent_matches_a_brute_force_search(bits, signed, seed):
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(400, generator=generator) * 2
    values[:3] = torch.tensor([9.0, -7.0, 12.5])  # heavy tails, so clipping can pay off
    if not signed:
        values = values.abs()
    expected = _brute_force_mse_exponent(values.tolist(), bits, signed)
    assert mse_exponent(values, bits, signed) == expected
    assert expected <= minmax_exponent(float(values.min()), float(values.max()), bits, signed)


def test_mse_ties_go_to_the_larger_exponent():
    # Every candidate represents these values exactly (error 0); the search keeps the first, largest one.
    values = torch.tensor([0.0, 1.0, 2.0, 3.0])
    assert mse_exponent(values, 8, signed=False) == minmax_exponent(0.0, 3.0, 8, signed=False) == -6


def test_mse_starts_from_the_given_extremes():
    # On its own the bulk is best served by e = -4 (candidates -3..-7).
    assert mse_exponent(BULK, 4, signed=False) == -4
    # A sample that missed an outlier at 20: the search covers 1..-3 (20 <= 15 * 2**1) and stops at -3.
    assert mse_exponent(BULK, 4, signed=False, min_val=0.0, max_val=20.0) == -3


def test_mse_exponents_are_remembered_by_content_not_by_tensor(monkeypatch):
    searches = []
    search = clipping._search_mse_exponents
    monkeypatch.setattr(clipping, "_mse_memo", type(clipping._mse_memo)())
    monkeypatch.setattr(clipping, "_search_mse_exponents", lambda *a: searches.append(a) or search(*a))
    weights = torch.randn(4, 50, generator=torch.Generator().manual_seed(3))
    weights[1, 0] = 9.0  # an outlier, so that channel's exponent differs from the rest
    mins, maxs = weights.min(dim=1).values.tolist(), weights.max(dim=1).values.tolist()
    first = mse_exponents(weights, 4, True, mins, maxs)
    assert first == [mse_exponent(row, 4, True) for row in weights]  # per-row search, 4 more searches
    assert mse_exponents(weights.clone(), 4, True, mins, maxs) == first  # a copy: remembered
    assert len(searches) == 5
    changed = weights.clone()
    changed[1, 0] = 0.0  # one value differs: searched again, and the result follows the data
    assert mse_exponents(changed, 4, True, mins, maxs)[1] != first[1]
    mse_exponents(weights, 5, True, mins, maxs)  # another width: searched again
    assert len(searches) == 7
    monkeypatch.setattr(clipping, "MSE_MEMO_ENTRIES", 1)
    mse_exponents(weights, 6, True, mins, maxs)
    assert len(clipping._mse_memo) == 1  # bounded: the oldest results go first


def test_zero_ranges_behave_as_unit_ranges_without_nan():
    zeros = torch.zeros(10)
    assert minmax_exponent(0.0, 0.0, 8, signed=False) == minmax_exponent(0.0, 1.0, 8, signed=False) == -7
    assert minmax_exponent(0.0, 0.0, 8, signed=True) == minmax_exponent(-1.0, 1.0, 8, signed=True) == -6
    assert hardware_exponent(0.0, 0.0, 8, signed=False) == -8
    assert hardware_exponent(0.0, 0.0, 4, signed=True) == -3
    assert percentile_exponent(zeros, 8, signed=False) == -7
    assert mse_exponent(zeros, 8, signed=False) == -7
    assert torch.equal(fake_quantize(zeros, -7, 8, signed=False), zeros)


def test_exponents_are_clamped_to_the_supported_range():
    assert minmax_exponent(0.0, 1e-40, 8, signed=False) == MIN_EXPONENT
    assert hardware_exponent(0.0, 1e-40, 8, signed=False) == MIN_EXPONENT
    assert minmax_exponent(-3e38, 3e38, 8, signed=True) == MAX_EXPONENT
    assert hardware_exponent(0.0, 3e38, 8, signed=False) == MAX_EXPONENT
