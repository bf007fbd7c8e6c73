"""Integer codes, their carriers and integer-weight layers, with the int64 arithmetic that checks them."""

import torch
from torch import nn

from capsnet_nncf_plugin.core.integer_format import quant_range
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.quantized.carrier import to_carrier
from capsnet_nncf_plugin.quantized.weights import integer_weight_layer


def random_codes(shape, bits, signed, generator):
    low, high = quant_range(bits, signed)
    return torch.randint(low, high + 1, shape, generator=generator)


def carrier_of(codes: torch.Tensor, bits: int, signed: bool, exponent: int) -> torch.Tensor:
    """A module input carrying ``codes`` (integers) in the format (bits, signed, 2^exponent)."""
    quantizer = PowerOfTwoQuantizer(bits, signed, exponent)
    return to_carrier(quantizer, codes.double().mul(2.0**exponent).float())


def layer_with_codes(layer: nn.Module, codes: torch.Tensor, bits: int, exponents) -> nn.Module:
    """``layer`` in its integer-weight form with the given codes, per-output-channel exponents."""
    quantizer = PowerOfTwoQuantizer(bits, True, tuple(exponents), axis=0)
    with torch.no_grad():
        layer.weight.copy_(
            codes.double()
            .mul(
                torch.pow(2.0, torch.tensor(exponents, dtype=torch.float64)).view(
                    (-1,) + (1,) * (codes.dim() - 1)
                )
            )
            .float()
        )
    return integer_weight_layer(layer, quantizer, "weight", codes.to(torch.int16))


def int64_conv(input_codes, weight_codes, bias_codes, stride, padding, groups=1):
    """The accumulator of a 2D convolution in int64 (im2col and an integer matrix product per group)."""
    batch, _, height, _ = input_codes.shape
    out_channels, _, kernel_h, kernel_w = weight_codes.shape
    parts = []
    for inputs, weights in zip(
        input_codes.chunk(groups, dim=1), weight_codes.chunk(groups, dim=0), strict=True
    ):
        columns = nn.functional.unfold(inputs.double(), (kernel_h, kernel_w), padding=padding, stride=stride)
        columns = columns.round().to(torch.int64)  # unfold on doubles moves integers below 2^53 exactly
        parts.append(torch.einsum("ok,nkl->nol", weights.flatten(1).to(torch.int64), columns))
    out_h = (height + 2 * padding - kernel_h) // stride + 1
    sums = torch.cat(parts, dim=1).view(batch, out_channels, out_h, -1)
    return sums if bias_codes is None else sums + bias_codes.to(torch.int64).view(1, -1, 1, 1)


def exact_values(sums: torch.Tensor, exponents: torch.Tensor) -> torch.Tensor:
    """int64 accumulators times 2^(e_in + e_w[c]) along axis 1, as float64 (exact: |sums| < 2^53)."""
    assert sums.abs().max() < 2**53
    return sums.double() * torch.pow(2.0, exponents.double()).view((1, -1) + (1,) * (sums.dim() - 2))
