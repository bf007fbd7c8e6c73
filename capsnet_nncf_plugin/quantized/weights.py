"""Layers with power-of-two integer weights, as the quantized custom modules run them.

A convolution or linear layer computes on grid values with integer weights, so its accumulator is an
integer multiple of 2^(e_in + e_w[c]); its bias is rounded onto that grid (int32 codes), as an integer
kernel (onnxruntime's QLinearConv) adds it. Every sum is then exact in float32 as long as it stays below
2^24 accumulator steps, and the result does not depend on the kernel's summation order: the torch model,
onnxruntime's unfused QDQ graph and the ONNX export agree bit for bit.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from capsnet_nncf_plugin.core.integer_format import quant_range
from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.nn import VoteTransform
from capsnet_nncf_plugin.quantized.carrier import values_and_exponent

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class QuantizedWeights(nn.Module):
    """The weight of a layer as integer codes with per-output-channel power-of-two exponents.

    ``quantizer``: the weight's frozen format; ``codes``: the codes to keep (GPTQ's, chosen at calibration)
    on that grid; by default the weight rounded to nearest.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        quantizer: PowerOfTwoQuantizer,
        name: str,
        codes: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        weight = weight.detach()
        self.quantizer = quantizer
        if codes is None:
            codes = self.quantizer.quantize(weight)
        else:
            _check_codes(codes, weight, self.quantizer, name)
        self.register_buffer("codes", codes.to(torch.int16))
        self.register_buffer(
            "values", self.quantizer.dequantize(self.codes.to(torch.float32)), persistent=False
        )

    def channel_exponents(self, channels: int) -> torch.Tensor:
        """One exponent per output channel (axis 0), as int64."""
        exponent = self.quantizer.exponent
        if isinstance(exponent, tuple):
            if self.quantizer.axis != 0:
                raise ValueError(
                    f"a bias needs weight exponents along axis 0, got axis {self.quantizer.axis}"
                )
            return torch.tensor(exponent, dtype=torch.int64)
        return torch.full((channels,), exponent, dtype=torch.int64)


def _check_codes(
    codes: torch.Tensor, weight: torch.Tensor, quantizer: PowerOfTwoQuantizer, name: str
) -> None:
    qmin, qmax = quant_range(quantizer.bits, quantizer.signed)
    if codes.shape != weight.shape or codes.is_floating_point():
        raise ValueError(
            f"{name}: codes must be integers shaped like the weight {tuple(weight.shape)}, got "
            f"{codes.dtype} {tuple(codes.shape)}"
        )
    if int(codes.min()) < qmin or int(codes.max()) > qmax:
        raise ValueError(f"{name}: codes outside the {quantizer.bits}-bit range [{qmin}, {qmax}]")


def bias_codes(bias: torch.Tensor, exponents: torch.Tensor) -> torch.Tensor:
    """``bias`` as int32 codes on the per-channel grid ``2**exponents`` (half to even, saturating)."""
    scaled = bias.to(torch.float64) * torch.pow(2.0, -exponents.to(torch.float64))
    return torch.round(scaled).clamp_(INT32_MIN, INT32_MAX).to(torch.int32)


class IntegerWeightLayer(nn.Module):
    """Conv2d, Conv3d or Linear with power-of-two integer weights and its bias on the accumulator grid."""

    def __init__(
        self,
        layer: nn.Module,
        quantizer: PowerOfTwoQuantizer,
        name: str,
        codes: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(layer, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            raise TypeError(f"IntegerWeightLayer takes Conv2d, Conv3d or Linear, got {type(layer).__name__}")
        self.weights = QuantizedWeights(layer.weight, quantizer, name, codes)
        bias = None if layer.bias is None else layer.bias.detach().clone()
        self.register_buffer("bias", bias)
        self.layer = copy.deepcopy(layer)
        del self.layer.weight
        self.layer.register_parameter("bias", None)

    def accumulator_exponents(self, input_exponent: int) -> torch.Tensor:
        """Exponent of each output channel's accumulator: e_in + e_w[c]."""
        return input_exponent + self.weights.channel_exponents(self.weights.codes.shape[0])

    def grid_bias(self, input_exponent: int | None) -> torch.Tensor | None:
        """The bias as the integer kernel adds it (float, unrounded, when the input format is unknown)."""
        if self.bias is None or input_exponent is None:
            return self.bias
        exponents = self.accumulator_exponents(input_exponent)
        return (bias_codes(self.bias, exponents).to(torch.float64) * torch.pow(2.0, exponents)).float()

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        values, exponent = values_and_exponent(tensor)
        bias = self.grid_bias(exponent)
        if isinstance(self.layer, nn.Linear):
            return nn.functional.linear(values, self.weights.values, bias)
        return self.layer._conv_forward(values, self.weights.values, bias)


class IntegerVoteTransform(nn.Module):
    """``VoteTransform`` with power-of-two integer ``W_ij``; its optional bias stays float (added once)."""

    def __init__(
        self,
        layer: VoteTransform,
        quantizer: PowerOfTwoQuantizer,
        name: str,
        codes: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.weights = QuantizedWeights(layer.weight, quantizer, name, codes)
        self.register_buffer("bias", None if layer.bias is None else layer.bias.detach().clone())

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        values, _ = values_and_exponent(tensor)
        votes = torch.einsum("ijdk,nik->nijd", self.weights.values, values)
        return votes if self.bias is None else votes + self.bias


def integer_weight_layer(
    layer: nn.Module,
    quantizer: PowerOfTwoQuantizer,
    name: str,
    codes: torch.Tensor | None = None,
) -> nn.Module:
    """The integer-weight form of a float layer with one weight (``codes``: see ``QuantizedWeights``)."""
    if isinstance(layer, VoteTransform):
        return IntegerVoteTransform(layer, quantizer, name, codes)
    return IntegerWeightLayer(layer, quantizer, name, codes)
