"""Integer-weight layers sum exactly whatever the widths: float32 where its bound holds, else split inputs or
float64; each path checked bit for bit against int64 arithmetic. And the two-pass carrier equals
``to_carrier``."""

import pytest
import torch
from integer_codes import carrier_of, exact_values, int64_conv, layer_with_codes, random_codes
from torch import nn

from capsnet_nncf_plugin.core.integer_format import quant_range
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.nn import VoteTransform
from capsnet_nncf_plugin.quantized.carrier import to_carrier
from capsnet_nncf_plugin.quantized.modules import fast_carrier
from capsnet_nncf_plugin.quantized.weights import FLOAT32, FLOAT64, SPLIT, IntegerVoteTransform


@pytest.mark.parametrize(
    ("input_bits", "signed", "weight_bits", "in_channels", "plan"),
    [
        (8, False, 4, 3, FLOAT32),  # the common case: the container's bound suffices
        (8, False, 6, 256, SPLIT),  # ShallowCaps' primary capsules: 9x9x256 kernels on 8-bit inputs
        (16, True, 8, 64, SPLIT),  # 16-bit activations: 8 + 8 bits
        (16, True, 8, 256, FLOAT64),  # 16-bit activations into a large layer
        (12, True, 4, 2, FLOAT32),  # a qint32 container whose codes are small enough
    ],
)
def test_every_plan_sums_exactly(input_bits, signed, weight_bits, in_channels, plan):
    generator = torch.Generator().manual_seed(input_bits * 1000 + in_channels)
    kernel, out_channels, input_exponent = (9 if in_channels == 256 else 3), 5, -3
    conv = nn.Conv2d(in_channels, out_channels, kernel, stride=2, padding=1)
    weight_codes = random_codes(conv.weight.shape, weight_bits, True, generator)
    weight_exponents = [-9, -8, -10, -7, -9]
    layer = layer_with_codes(conv, weight_codes, weight_bits, weight_exponents)
    input_codes = random_codes((2, in_channels, 12, 12), input_bits, signed, generator)
    tensor = carrier_of(input_codes, input_bits, signed, input_exponent)

    result = layer(tensor)

    assert layer.bound.calls[plan] == 1
    exponents = layer.accumulator_exponents(input_exponent)
    bias = torch.round(conv.bias.double() * torch.pow(2.0, -exponents.double())).to(torch.int64)
    expected = exact_values(int64_conv(input_codes, weight_codes, bias, 2, 1), exponents)
    assert result.dtype == (torch.float32 if plan == FLOAT32 else torch.float64)
    assert torch.equal(result.double(), expected)


def test_a_sum_float32_cannot_hold_is_exact():
    """(2^15 - 1) * (2^15 - 3) has 30 significant bits: a float32 product rounds it, the split does not."""
    linear = nn.Linear(1, 1, bias=False)
    layer = layer_with_codes(linear, torch.tensor([[32765]]), 16, [0])
    tensor = carrier_of(torch.tensor([[32767]]), 16, True, 0)

    result = layer(tensor)

    assert layer.bound.calls[SPLIT] == 1
    assert int(result.item()) == 32767 * 32765
    assert float(torch.tensor(32767.0) * torch.tensor(32765.0)) != 32767 * 32765  # what float32 alone gives


@pytest.mark.parametrize(
    ("input_bits", "weight_bits", "plan"), [(8, 6, FLOAT32), (16, 8, SPLIT), (16, 16, FLOAT64)]
)
def test_vote_transform_sums_exactly(input_bits, weight_bits, plan):
    generator = torch.Generator().manual_seed(input_bits + weight_bits)
    votes = VoteTransform(in_capsules=6, out_capsules=3, in_dim=8, out_dim=4)
    weight_codes = random_codes(votes.weight.shape, weight_bits, True, generator)
    quantizer = PowerOfTwoQuantizer(weight_bits, True, (-12,) * 6, axis=0)
    with torch.no_grad():
        votes.weight.copy_(weight_codes.float() * 2.0**-12)
    layer = IntegerVoteTransform(votes, quantizer, "votes.weight", weight_codes.to(torch.int16))
    input_codes = random_codes((3, 6, 8), input_bits, True, generator)

    result = layer(carrier_of(input_codes, input_bits, True, -5))

    assert layer.bound.calls[plan] == 1
    sums = torch.einsum("ijdk,nik->nijd", weight_codes.to(torch.int64), input_codes.to(torch.int64))
    assert torch.equal(result.double(), sums.double() * 2.0 ** (-12 - 5))


@pytest.mark.parametrize("bits", [2, 4, 7, 8, 9, 12, 16])
@pytest.mark.parametrize("signed", [True, False])
def test_fast_carrier_is_to_carrier_bit_for_bit(bits, signed):
    generator = torch.Generator().manual_seed(bits)
    exponent = -3
    low, high = quant_range(bits, signed)
    # Every half-way point of the range and beyond it (ties round to even), the float32 values just beside
    # each (a kernel that added the zero point before rounding would round those twice), random values.
    halves = torch.arange(2 * (low - 3), 2 * (high + 3) + 1).float() * 0.5
    beside = torch.cat([torch.nextafter(halves, halves - 1), torch.nextafter(halves, halves + 1)])
    noise = torch.randn(4000, generator=generator) * (high - low) / 2
    values = torch.cat([halves, beside, noise]) * 2.0**exponent
    quantizer = PowerOfTwoQuantizer(bits, signed, exponent)

    expected, actual = to_carrier(quantizer, values), fast_carrier(quantizer, values)

    assert actual.dtype == expected.dtype
    assert (actual.q_scale(), actual.q_zero_point()) == (expected.q_scale(), expected.q_zero_point())
    assert torch.equal(actual.int_repr(), expected.int_repr())
    wide = fast_carrier(quantizer, values.double())  # a float64 result is rounded once, in float64
    assert torch.equal(wide.int_repr(), expected.int_repr())
