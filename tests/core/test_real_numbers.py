import math

import pytest

from capsnet_nncf_plugin.core.real_numbers import is_finite_number


@pytest.mark.parametrize("value", [0, -3, 2.5, 1e308, 10**400, -(10**400)])
def test_ints_and_finite_floats_are_numbers(value):
    # 10**400 is a valid JSON integer; converting it to float for math.isfinite would overflow.
    assert is_finite_number(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, False, "8", None, [8], {"x": 8}, 1j])
def test_nan_infinities_bools_and_other_types_are_not(value):
    assert not is_finite_number(value)
