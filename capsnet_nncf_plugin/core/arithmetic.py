"""Power-of-two quantization arithmetic: the one definition every adapter, exporter and kernel must match.

A quantizer is ``(bits, signed, exponent)``: scale ``2**exponent``, zero point 0, integers in
``quant_range(bits, signed)``. Quantizing is ``clamp(round_half_to_even(x * 2**-exponent), qmin, qmax)``;
dequantizing is ``q * 2**exponent``. Both multiplications are by a power of two built from its bit pattern,
so they are exact in float32 and float64 as long as the exponents stay in
``MIN_EXPONENT..MAX_EXPONENT`` (see below) - which is what lets FX, NNCF, onnxruntime and the C++ kernels
agree bit for bit.
"""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.core.integer_format import quant_range

#: Smallest supported exponent: 2**-126 is float32's smallest normal number, so every non-zero dequantized
#: value ``q * 2**exponent`` is a normal float and the multiplication is exact.
MIN_EXPONENT = -126
#: Largest supported exponent: the widest integers (16 bits, |q| <= 2**16) times 2**111 stay below
#: float32's largest finite value 2**128, so dequantizing never overflows; 2**-111 is normal too.
MAX_EXPONENT = 111

_FLOAT32_EXPONENT_BIAS = 127
_FLOAT32_MANTISSA_BITS = 23

Exponent = int | torch.Tensor


def check_exponent(exponent: Exponent) -> None:
    """Raise ``ValueError`` unless every exponent is an integer in ``MIN_EXPONENT..MAX_EXPONENT``."""
    if isinstance(exponent, torch.Tensor):
        if exponent.is_floating_point() or exponent.is_complex():
            raise ValueError(f"exponent must be an integer tensor, got dtype {exponent.dtype}")
        if exponent.numel() == 0:
            raise ValueError("exponent tensor is empty; pass one exponent per channel")
        low, high = int(exponent.min()), int(exponent.max())
    elif isinstance(exponent, int) and not isinstance(exponent, bool):
        low = high = exponent
    else:
        raise ValueError(f"exponent must be an int or an integer tensor, got {exponent!r}")
    if low < MIN_EXPONENT or high > MAX_EXPONENT:
        raise ValueError(
            f"exponent must be in {MIN_EXPONENT}..{MAX_EXPONENT} so that scales and dequantized values are "
            f"exact normal float32 numbers, got values in {low}..{high}"
        )


def power_of_two(exponent: Exponent, device: torch.device | str | None = None) -> torch.Tensor:
    """``2**exponent`` as float32, built from its bit pattern so that it is exact on every platform.

    ``exponent`` must lie in ``-126..127`` (float32's normal range); the quantize functions check the
    narrower ``MIN_EXPONENT..MAX_EXPONENT``.
    """
    exponents = torch.as_tensor(exponent, device=device).to(torch.int32)
    if int(exponents.min()) < -_FLOAT32_EXPONENT_BIAS + 1 or int(exponents.max()) > _FLOAT32_EXPONENT_BIAS:
        raise ValueError(f"power_of_two needs exponents in -126..127, got {exponent!r}")
    # A float32 with a zero mantissa and biased exponent field e + 127 is exactly 2**e; no pow/exp2 whose
    # rounding could differ between libm, CUDA and the C++ kernels.
    return ((exponents + _FLOAT32_EXPONENT_BIAS) << _FLOAT32_MANTISSA_BITS).view(torch.float32)


def _compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    # float16/bfloat16 cannot hold 2**-exponent for most exponents; float64 stays float64 (still exact).
    if not tensor.is_floating_point():
        return torch.float32
    return torch.promote_types(tensor.dtype, torch.float32)


def _broadcastable(
    exponent: Exponent, tensor: torch.Tensor, axis: int | None, negate: bool, dtype: torch.dtype
) -> torch.Tensor:
    """``2**±exponent`` shaped to broadcast against ``tensor``: a scalar, or one per slice of ``axis``."""
    check_exponent(exponent)
    exponents = torch.as_tensor(exponent, device=tensor.device)
    if negate:
        exponents = -exponents
    factors = power_of_two(exponents).to(dtype)
    if axis is None:
        if factors.numel() != 1:
            raise ValueError(
                f"got {factors.numel()} exponents but no axis; pass axis= for per-channel quantization"
            )
        return factors.reshape(())
    if tensor.dim() == 0:
        raise ValueError("per-channel quantization needs a tensor with at least one dimension")
    axis = axis % tensor.dim()
    if factors.dim() != 1 or factors.numel() != tensor.shape[axis]:
        raise ValueError(
            f"per-channel quantization along axis {axis} needs {tensor.shape[axis]} exponents "
            f"(one per channel), got shape {tuple(factors.shape)}"
        )
    shape = [1] * tensor.dim()
    shape[axis] = -1
    return factors.reshape(shape)


def quantize(
    tensor: torch.Tensor, exponent: Exponent, bits: int, signed: bool, axis: int | None = None
) -> torch.Tensor:
    """Integer codes ``clamp(round(tensor * 2**-exponent), qmin, qmax)``, as an integer-valued float tensor.

    Rounding is half to even (``torch.round``), as in onnxruntime's QuantizeLinear; values beyond the range
    saturate. ``exponent`` is an int, or with ``axis`` a 1-D integer tensor with one exponent per slice along
    ``axis``. The result has dtype float32 (float64 for float64 input): every code of up to 16 bits is exact
    there, and ``.to(torch.int32)`` converts it losslessly.
    """
    qmin, qmax = quant_range(bits, signed)
    dtype = _compute_dtype(tensor)
    inverse_scale = _broadcastable(exponent, tensor, axis, negate=True, dtype=dtype)
    # One new tensor, rounded and clamped in place: votes of a DeepCaps batch are hundreds of MB.
    codes = (tensor.to(dtype) * inverse_scale).round_().clamp_(qmin, qmax)
    # round(-0.3) is -0.0; adding +0.0 makes it +0.0, the bits an integer kernel's 0 dequantizes to.
    return codes.add_(0.0)


def dequantize(codes: torch.Tensor, exponent: Exponent, axis: int | None = None) -> torch.Tensor:
    """Real values ``codes * 2**exponent`` (float32, or float64 for float64 codes); exact for 16-bit codes."""
    dtype = _compute_dtype(codes)
    scale = _broadcastable(exponent, codes, axis, negate=False, dtype=dtype)
    return codes.to(dtype) * scale


def fake_quantize(
    tensor: torch.Tensor, exponent: Exponent, bits: int, signed: bool, axis: int | None = None
) -> torch.Tensor:
    """``dequantize(quantize(tensor, ...))`` returned in ``tensor``'s dtype (exact for float32 and float64).

    No gradient is defined beyond what ``torch.round`` gives (zero): this is post-training quantization.
    """
    codes = quantize(tensor, exponent, bits, signed, axis)
    return dequantize(codes, exponent, axis).to(tensor.dtype)
