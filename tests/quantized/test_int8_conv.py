"""The int8 convolution gives the float32 path's values bit for bit, and runs only where it is exact."""

import copy

import pytest
import torch
from integer_codes import carrier_of, exact_values, int64_conv, layer_with_codes, random_codes
from torch import nn

from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.quantized import int8_conv
from capsnet_nncf_plugin.quantized.modules import fast_carrier
from capsnet_nncf_plugin.quantized.weights import FLOAT32

LIMIT = int8_conv.weight_code_limit()
needs_int8 = pytest.mark.skipif(LIMIT == 0, reason="oneDNN's int8 convolution is not exact on this CPU")


@pytest.fixture
def float32_only(monkeypatch):
    """Every convolution on the float32 path, as with CAPSQ_INT8_CONV=0."""
    monkeypatch.setenv(int8_conv.INT8_CONV_ENV, "0")
    int8_conv.weight_code_limit.cache_clear()
    yield
    int8_conv.weight_code_limit.cache_clear()


@needs_int8
@pytest.mark.parametrize(
    ("signed", "stride", "padding", "groups", "in_channels"),
    [
        (False, 1, 1, 1, 16),
        (True, 2, 1, 1, 16),
        (True, 1, 0, 1, 3),
        (False, 2, 2, 4, 16),
        # Many channels, as many as keep the float32 bound (2^24 steps) with full int8 weights: one channel
        # of -128 codes on 96 inputs of -128 sums to 96 * 9 * 2^14 = 14.2 M steps.
        (True, 1, 1, 1, 96),
    ],
)
def test_int8_sums_are_the_exact_sums(signed, stride, padding, groups, in_channels):
    generator = torch.Generator().manual_seed(stride * 100 + in_channels + groups)
    conv = nn.Conv2d(in_channels, 8, 3, stride=stride, padding=padding, groups=groups)
    weight_bits = 8 if LIMIT == 128 else 7
    weight_codes = random_codes(conv.weight.shape, weight_bits, True, generator)
    weight_codes[0].fill_(-LIMIT)  # the extreme code, on every input position of one channel
    exponents = [-9, -8, -10, -7, -9, -6, -8, -9]
    layer = layer_with_codes(conv, weight_codes, weight_bits, exponents)
    input_codes = random_codes((2, in_channels, 9, 9), 8, signed, generator)
    input_codes[0].fill_(-128 if signed else 255)  # the extreme input code on a whole image

    result = layer(carrier_of(input_codes, 8, signed, -3))

    assert layer.bound.calls[FLOAT32] == 1 and layer._int8[1]  # the int8 kernel ran
    exponent_sums = layer.accumulator_exponents(-3)
    bias = torch.round(conv.bias.double() * torch.pow(2.0, -exponent_sums.double())).to(torch.int64)
    expected = exact_values(
        int64_conv(input_codes, weight_codes, bias, stride, padding, groups), exponent_sums
    )
    assert result.dtype == torch.float32
    assert torch.equal(result.double(), expected)


@needs_int8
def test_the_int8_path_and_the_float32_path_agree_bit_for_bit(monkeypatch):
    generator = torch.Generator().manual_seed(7)
    conv = nn.Conv2d(32, 16, 3, padding=1)
    weight_codes = random_codes(conv.weight.shape, 6, True, generator)
    layer = layer_with_codes(conv, weight_codes, 6, [-8] * 16)
    tensor = carrier_of(random_codes((4, 32, 14, 14), 8, False, generator), 8, False, -4)
    fast = layer(tensor)
    monkeypatch.setenv(int8_conv.INT8_CONV_ENV, "0")
    int8_conv.weight_code_limit.cache_clear()
    try:
        plain = layer_with_codes(conv, weight_codes, 6, [-8] * 16)(tensor)
    finally:
        int8_conv.weight_code_limit.cache_clear()
    assert torch.equal(fast, plain)


def test_weights_beyond_the_limit_and_wider_inputs_stay_on_float32():
    generator = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(4, 2, 3, padding=1)
    codes = random_codes(conv.weight.shape, 9, True, generator)  # beyond int8
    codes[0, 0, 0, 0] = 255
    layer = layer_with_codes(conv, codes, 9, [-9, -9])
    layer(carrier_of(random_codes((1, 4, 6, 6), 8, False, generator), 8, False, -3))
    assert layer._int8[1] is False
    narrow = layer_with_codes(conv, random_codes(conv.weight.shape, 4, True, generator), 4, [-9, -9])
    kernel = int8_conv.Int8Conv2d(conv, narrow.weights.codes, torch.ones(2)) if LIMIT else None
    sixteen_bits = carrier_of(random_codes((1, 4, 6, 6), 12, True, generator), 12, True, -3)  # qint32
    assert kernel is None or kernel(sixteen_bits, None) is None


@needs_int8
def test_an_input_of_other_channels_gets_torchs_error_naming_the_shapes():
    generator = torch.Generator().manual_seed(5)
    conv = nn.Conv2d(1, 2, 3)
    layer = layer_with_codes(conv, random_codes(conv.weight.shape, 4, True, generator), 4, [-9, -9])
    three_channels = carrier_of(random_codes((2, 3, 8, 8), 8, False, generator), 8, False, -3)
    assert layer._int8_kernel()(three_channels, None) is None  # declined: not what oneDNN says of it
    with pytest.raises(RuntimeError, match=r"expected input.* to have 1 channels, but got 3 channels"):
        layer(three_channels)


def test_no_int8_kernel_when_turned_off(float32_only):
    conv = nn.Conv2d(4, 2, 3)
    assert int8_conv.weight_code_limit() == 0
    assert not int8_conv.Int8Conv2d.applies(conv, torch.zeros(2, 4, 3, 3, dtype=torch.int16))


def saturating_pairs(inputs, zero_point, codes, conv):
    """An x86 kernel without VNNI: the raw products summed in int16 pairs, saturating, then the zero point's
    share taken off (the padding holds the zero point)."""
    pad = conv.padding[0]
    padded = nn.functional.pad(inputs.double(), (pad,) * 4, value=zero_point)
    columns = nn.functional.unfold(padded, conv.kernel_size)  # [n, in * k * k, positions]
    weights = codes.flatten(1).double()  # [out, in * k * k]
    products = weights.view(1, *weights.shape, 1) * columns.unsqueeze(1)
    pairs = products.unflatten(2, (-1, 2)).sum(dim=3).clamp(-32768, 32767)
    sums = pairs.sum(dim=2) - zero_point * weights.sum(dim=1).view(1, -1, 1)
    height = inputs.shape[-2] + 2 * pad - conv.kernel_size[0] + 1
    return sums.view(*sums.shape[:2], height, -1)


def exact_sums(inputs, zero_point, codes, conv):
    return nn.functional.conv2d(inputs.double() - zero_point, codes.double(), padding=conv.padding)


@pytest.mark.parametrize(
    ("kernel", "limit"),
    [
        (exact_sums, 128),  # VNNI, AMX: exact for every int8 weight
        (saturating_pairs, 64),  # 255 * -128 * 2 saturates int16, 255 * -64 * 2 does not
        (lambda inputs, zero_point, codes, conv: exact_sums(inputs, zero_point, codes, conv) + 1, 0),
    ],
)
def test_the_probe_finds_the_widest_weight_codes_the_kernel_sums_exactly(monkeypatch, kernel, limit):
    monkeypatch.setattr(int8_conv, "_probe_sums", kernel)
    int8_conv.weight_code_limit.cache_clear()
    try:
        assert int8_conv.weight_code_limit() == limit
    finally:
        int8_conv.weight_code_limit.cache_clear()


@needs_int8
def test_a_copied_layer_packs_its_weights_again_and_computes_the_same():
    generator = torch.Generator().manual_seed(11)
    conv = nn.Conv2d(8, 4, 3, padding=1)
    layer = layer_with_codes(conv, random_codes(conv.weight.shape, 5, True, generator), 5, [-7] * 4)
    tensor = carrier_of(random_codes((2, 8, 6, 6), 8, False, generator), 8, False, -2)
    first = layer(tensor)
    copied = copy.deepcopy(layer)
    assert copied._int8[1].packed is not layer._int8[1].packed
    assert torch.equal(copied(tensor), first)
    with torch.no_grad():  # new codes (as load_state_dict copies them in) get a new kernel
        layer.weights.codes.neg_()
    assert not torch.equal(layer(tensor), first)


@needs_int8
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize(
    ("bits", "signed", "exponent"),
    [
        (8, False, -6),
        (8, True, -7),
        (5, False, -4),
        (4, True, -5),
        (2, True, -3),
        (8, True, 3),
        (8, True, -10),
    ],
)
def test_the_fused_requantization_gives_the_codes_of_rounding_afterwards(bits, signed, exponent, relu):
    """oneDNN rounds onto the output grid half to even and saturates as ``fast_carrier`` does: codes beyond
    a narrow format's range, ReLU's zero and (exponent -10, one above the accumulator's -11, with small
    codes so that the sums stay in range) ties are all in these outputs."""
    generator = torch.Generator().manual_seed(bits * 10 + exponent + 100 * relu)
    conv = nn.Conv2d(16, 8, 3, padding=1, bias=exponent != -10)
    small = exponent == -10
    weight_codes = random_codes(conv.weight.shape, 2 if small else 7, True, generator)
    layer = layer_with_codes(conv, weight_codes, 7, [-8] * 8)
    input_codes = random_codes((3, 16, 10, 10), 3 if small else 8, True, generator)
    tensor = carrier_of(input_codes, 8, True, -3)
    output = PowerOfTwoQuantizer(bits, signed, exponent)

    fused = layer.output_carrier(tensor, output, relu)

    values = layer(tensor)
    expected = fast_carrier(output, torch.relu(values) if relu else values)
    assert fused is not None and fused.dtype == torch.quint8
    assert (fused.q_scale(), fused.q_zero_point()) == (expected.q_scale(), expected.q_zero_point())
    assert torch.equal(fused.int_repr(), expected.int_repr())
    if small:  # ties inside the range were rounded, both ways
        scaled = values.double() * 2.0**-exponent
        ties = (scaled - scaled.floor() == 0.5) & (scaled.abs() < 127)
        assert int(ties.sum()) > 100


@needs_int8
def test_the_fused_requantization_declines_what_it_cannot_compute():
    generator = torch.Generator().manual_seed(5)
    conv = nn.Conv2d(4, 2, 3, padding=1)
    layer = layer_with_codes(conv, random_codes(conv.weight.shape, 6, True, generator), 6, [-8, -8])
    tensor = carrier_of(random_codes((1, 4, 6, 6), 8, False, generator), 8, False, -2)
    assert layer.output_carrier(tensor, PowerOfTwoQuantizer(9, True, -4)) is None  # not an 8-bit carrier
    assert layer.output_carrier(tensor.dequantize(), PowerOfTwoQuantizer(8, True, -4)) is None
    wide = carrier_of(random_codes((1, 4, 6, 6), 12, False, generator), 12, False, -2)
    assert layer.output_carrier(wide, PowerOfTwoQuantizer(8, True, -4)) is None  # 12-bit input


def test_no_fused_requantization_without_the_int8_kernel(float32_only):
    generator = torch.Generator().manual_seed(5)
    conv = nn.Conv2d(4, 2, 3, padding=1)
    layer = layer_with_codes(conv, random_codes(conv.weight.shape, 6, True, generator), 6, [-8, -8])
    tensor = carrier_of(random_codes((1, 4, 6, 6), 8, False, generator), 8, False, -2)
    assert layer.output_carrier(tensor, PowerOfTwoQuantizer(8, True, -4)) is None
