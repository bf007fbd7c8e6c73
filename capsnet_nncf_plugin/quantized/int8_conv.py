"""2D convolutions of 8-bit codes on oneDNN's int8 kernels, where they give the float32 path's exact sums.

An :class:`~capsnet_nncf_plugin.quantized.weights.IntegerWeightLayer` convolves grid values in float32,
exact while every partial sum stays below 2^24 steps. Where its input is an 8-bit container and its weight
codes fit int8, the same integer sums come from oneDNN's int8 convolution (``torch.ops.onednn``, part of
torch's CPU build) two to four times faster (docs/allocation.md, "Search speed"): every product and sum is
an integer, so both paths give the same sums, and the caller scales them by the same powers of two.

One trap decides where the kernel may run. Without AVX-512 VNNI (or AMX), x86 int8 kernels multiply
unsigned 8-bit inputs by signed 8-bit weights with ``vpmaddubsw``, which adds products in pairs and
saturates the pair at int16: ``255 * -128 * 2`` does not fit, ``255 * -64 * 2`` does. Which kernel oneDNN
picks is its own choice, so :func:`weight_code_limit` measures it once per process on inputs built to
saturate: the full int8 range where the sums come out exact, codes in [-64, 63] where only those do, and
the float32 path everywhere when even those do not (or the op is missing). ``CAPSQ_INT8_CONV=0`` turns the
kernel off.
"""

from __future__ import annotations

import functools
import logging
import os

import torch
from torch import nn

logger = logging.getLogger(__name__)

#: Set to "0" to keep every convolution on the float32 path.
INT8_CONV_ENV = "CAPSQ_INT8_CONV"

#: The weight-code bounds :func:`weight_code_limit` tries, widest first: codes in [-limit, limit - 1].
_LIMITS = (128, 64)


def _convolve(
    inputs: torch.Tensor,
    input_scale: float,
    zero_point: int,
    packed: torch.Tensor,
    weight_scales: torch.Tensor,
    weight_zero_points: torch.Tensor,
    bias: torch.Tensor | None,
    conv: nn.Conv2d,
    output: tuple[float, int] | None = None,
) -> torch.Tensor:
    """oneDNN's int8 convolution of ``uint8`` inputs (``zero_point``: the code of 0) with prepacked int8
    weights (zero points 0): ``sums * input_scale * weight_scales[c] + bias[c]`` as float32, channels last;
    with ``output = (scale, zero_point)``, those values as ``uint8`` codes on that grid instead."""
    output_scale, output_zero_point = output if output is not None else (1.0, 0)
    return torch.ops.onednn.qconv2d_pointwise(
        inputs.contiguous(memory_format=torch.channels_last),
        input_scale,
        zero_point,
        packed,
        weight_scales,
        weight_zero_points,
        bias,
        list(conv.stride),
        list(conv.padding),
        list(conv.dilation),
        conv.groups,
        output_scale,
        output_zero_point,
        torch.float32 if output is None else torch.uint8,
        "none",
        [],
        "",
    )


def _prepack(codes: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    return torch.ops.onednn.qconv_prepack(
        codes.to(torch.int8),
        torch.ones(codes.shape[0], dtype=torch.float32),
        1.0,
        0,
        list(conv.stride),
        list(conv.padding),
        list(conv.dilation),
        conv.groups,
        None,
    )


def _probe_sums(inputs: torch.Tensor, zero_point: int, codes: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """The int8 kernel's sums of ``inputs`` with weight ``codes`` (what the probe runs)."""
    channels = codes.shape[0]
    ones, zeros = torch.ones(channels), torch.zeros(channels, dtype=torch.int64)
    return _convolve(inputs, 1.0, zero_point, _prepack(codes, conv), ones, zeros, None, conv)


def _exact_with(limit: int) -> bool:
    """Whether the int8 kernel sums inputs of 255 times weights of ``-limit`` (and ``limit - 1``) exactly,
    with the zero points the layers use (0, and 128 for signed inputs), in a 1x1 and a padded 3x3 kernel."""
    channels = 64
    inputs = torch.full((1, channels, 3, 3), 255, dtype=torch.uint8)
    for kernel_size in (1, 3):
        conv = nn.Conv2d(channels, 2, kernel_size, padding=kernel_size // 2, bias=False)
        codes = torch.empty(2, channels, kernel_size, kernel_size, dtype=torch.int64)
        codes[0], codes[1] = -limit, limit - 1
        for zero_point in (0, 128):
            # The padding holds the zero point: it adds nothing.
            expected = nn.functional.conv2d(
                inputs.double() - zero_point, codes.double(), padding=kernel_size // 2
            )
            if not torch.equal(_probe_sums(inputs, zero_point, codes, conv).double(), expected):
                return False
    return True


@functools.lru_cache(maxsize=1)
def weight_code_limit() -> int:
    """``limit`` such that the int8 kernel is exact for weight codes in [-limit, limit - 1]; 0 when it is
    off, missing, or exact for none (see the module doc). Measured once per process."""
    if os.environ.get(INT8_CONV_ENV, "1") == "0":
        return 0
    try:
        for limit in _LIMITS:
            if _exact_with(limit):
                logger.debug("int8 convolutions exact for weight codes in [-%d, %d]", limit, limit - 1)
                return limit
    except (RuntimeError, AttributeError, NotImplementedError) as error:  # an op missing from this build
        logger.debug("int8 convolutions unavailable: %s", error)
        return 0
    logger.debug("int8 convolutions saturate here: every convolution stays on the float32 path")
    return 0


class Int8Conv2d:
    """``conv`` with weight ``codes`` on the grids ``weight_scales`` (powers of two, one per output channel)
    over 8-bit inputs, on the int8 kernel."""

    def __init__(self, conv: nn.Conv2d, codes: torch.Tensor, weight_scales: torch.Tensor) -> None:
        self.conv, self.codes, self.weight_scales = conv, codes, weight_scales.to(torch.float32)
        self.weight_zero_points = torch.zeros(codes.shape[0], dtype=torch.int64)
        self.packed = _prepack(codes, conv)

    def __getstate__(self) -> dict:
        # The packed weights are oneDNN's opaque tensor: a copy (deepcopy, pickle) packs them again.
        return {"conv": self.conv, "codes": self.codes, "weight_scales": self.weight_scales}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["conv"], state["codes"], state["weight_scales"])

    @staticmethod
    def applies(layer: nn.Module, codes: torch.Tensor) -> bool:
        """Whether the kernel computes ``layer``'s sums exactly for any 8-bit input."""
        if (
            not isinstance(layer, nn.Conv2d)
            or layer.padding_mode != "zeros"
            or isinstance(layer.padding, str)
        ):
            return False
        limit = weight_code_limit()
        return limit > 0 and int(codes.min()) >= -limit and int(codes.max()) <= limit - 1

    def __call__(
        self, tensor: torch.Tensor, bias: torch.Tensor | None, output: tuple[float, int] | None = None
    ) -> torch.Tensor | None:
        """The convolution of the quantized ``tensor`` plus ``bias`` (float32, on the accumulator grid) as
        float32, or None when its container is not 8-bit or its shape not one the convolution takes.

        The int32 sums times the two powers of two, plus a bias on their grid, are exact float32 values
        where the layer's accumulator bound holds (the caller's condition): they are the float32 path's.
        ``output = (scale, zero_point)``, a power of two and the code of 0: those values rounded onto that
        grid, half to even, plus the zero point, saturated to ``uint8`` (oneDNN's requantization, one pass
        instead of the five of rounding float32 values afterwards; exact, as the values it rounds are):
        the codes of ``torch.quantize_per_tensor(values, scale, zero_point, torch.quint8)``.
        """
        if tensor.dim() != 4 or tensor.shape[1] != self.conv.in_channels:
            # Not an input this convolution takes: the float32 path raises torch's own error, which names
            # the shapes (oneDNN's says only that it "could not create a primitive descriptor").
            return None
        zero_point = int(tensor.q_zero_point())
        if tensor.dtype == torch.quint8:
            inputs = tensor.int_repr()
        elif tensor.dtype == torch.qint8:
            # The kernel takes unsigned inputs: shifting every code by 128 shifts the zero point with it.
            inputs = (tensor.int_repr().to(torch.int16) + 128).to(torch.uint8)
            zero_point += 128
        else:
            return None
        if not 0 <= zero_point <= 255:
            return None
        scale = float(tensor.q_scale())
        values = _convolve(
            inputs,
            scale,
            zero_point,
            self.packed,
            self.weight_scales,
            self.weight_zero_points,
            bias,
            self.conv,
            output,
        )
        # The layers after a convolution reduce over its axes: they get the float32 path's layout.
        return values.contiguous()
