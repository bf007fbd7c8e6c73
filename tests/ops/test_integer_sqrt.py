"""The integer square root is exact: near perfect squares, at the 2^62 bound and on random values."""

import math
import random

import pytest
import torch

from capsnet_nncf_plugin.ops.integer_sqrt import integer_sqrt


def test_exact_around_perfect_squares():
    generator = random.Random(0)
    roots = [0, 1, 2, 3, (1 << 31) - 1, (1 << 31) - 2, 1 << 30, (1 << 26) + 1, 94906265, 94906266]
    roots += [generator.randrange(1 << 31) for _ in range(3000)]
    roots += [generator.randrange(1 << generator.randrange(1, 32)) for _ in range(3000)]
    values = sorted({v for r in roots for v in (r * r - 1, r * r, r * r + 1) if 0 <= v < 1 << 62})
    result = integer_sqrt(torch.tensor(values)).tolist()
    assert result == [math.isqrt(value) for value in values]


def test_exact_at_the_bound_and_on_random_values():
    generator = random.Random(1)
    values = [(1 << 62) - 1, (1 << 62) - 2, 1 << 61, (1 << 53) + 1, (1 << 53) - 1]
    values += [generator.randrange(1 << generator.randrange(1, 63)) for _ in range(5000)]
    assert integer_sqrt(torch.tensor(values)).tolist() == [math.isqrt(value) for value in values]
    assert integer_sqrt(torch.tensor([(1 << 62) - 1])).item() == (1 << 31) - 1


def test_empty_input():
    assert integer_sqrt(torch.zeros(0, dtype=torch.int64)).shape == (0,)


@pytest.mark.parametrize("values", [[-1], [1 << 62]])
def test_rejects_values_outside_the_bound(values):
    with pytest.raises(ValueError, match=r"0\.\.2\^62-1"):
        integer_sqrt(torch.tensor(values))


def test_rejects_other_dtypes():
    with pytest.raises(ValueError, match="int64"):
        integer_sqrt(torch.tensor([4], dtype=torch.int32))
