"""Clipping modes: how a power-of-two exponent is chosen from observed statistics, one function per mode.

Every rule returns an int in ``MIN_EXPONENT..MAX_EXPONENT``. They share two conventions:

* **Coverage is exact.** "The smallest exponent ``e`` with ``m <= limit * 2**e``" is decided by exact float64
  comparisons (``math.ldexp``), never by a rounded ``log2``, so a magnitude of exactly ``qmax * 2**k`` gives
  ``k`` on every platform.
* **A zero range behaves as a unit range.** A magnitude of 0 (all-zero data, a dead channel) carries no
  information; every rule then returns the exponent it gives for a magnitude of 1.0, so the exponent is
  defined, finite and reasonable for data that later turns out to be non-zero.

The formulas, with worked examples, are in docs/observers.md.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import torch

from capsnet_nncf_plugin.core.arithmetic import MAX_EXPONENT, MIN_EXPONENT, fake_quantize
from capsnet_nncf_plugin.core.integer_format import check_bits, quant_range
from capsnet_nncf_plugin.errors import ConfigError

#: The clipping modes an observer accepts, by name.
CLIP_MODES = ("minmax", "hardware", "percentile", "mse")
#: The activation clipping the flows apply unless told otherwise: the range tailored to the integer format.
DEFAULT_CLIP = "hardware"

DEFAULT_PERCENTILE = 99.99

#: Results of :func:`mse_exponents` kept by content. Weights are the same tensors at every conversion, and
#: an allocation search converts the same layers at the same widths dozens of times: the search over
#: ``bits + 1`` candidates took 80 % of a DeepCaps ``convert_fx``; hashing the weights costs 1 % of it.
MSE_MEMO_ENTRIES = 1024
_mse_memo: OrderedDict[tuple, list[int]] = OrderedDict()


def check_clip_mode(clip: str) -> str:
    """Return ``clip`` if it names a clipping mode, else raise ``ValueError`` listing the valid ones."""
    if clip not in CLIP_MODES:
        raise ConfigError(f"clip must be one of {', '.join(CLIP_MODES)}; got {clip!r}")
    return clip


def check_percentile(percentile: float) -> float:
    """Return ``percentile`` if it is in (0, 100], else raise ``ValueError``."""
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile <= 100:
        raise ValueError(f"percentile must be a number in (0, 100], e.g. 99.99; got {percentile!r}")
    return float(percentile)


def _exact_covering_exponent(magnitude: float, limit: int) -> int:
    """Smallest integer ``e`` with ``0 < magnitude <= limit * 2**e``, unclamped."""
    # frexp gives the exponent of magnitude/limit up to one rounding step; the two exact comparisons that
    # follow remove that step, so the answer is exactly the definition.
    mantissa, exponent = math.frexp(magnitude / limit)
    if mantissa == 0.5:
        exponent -= 1
    while magnitude > math.ldexp(limit, exponent):
        exponent += 1
    while magnitude <= math.ldexp(limit, exponent - 1):
        exponent -= 1
    return exponent


def _clamp_exponent(exponent: int) -> int:
    return min(max(exponent, MIN_EXPONENT), MAX_EXPONENT)


def _check_magnitude(magnitude: float) -> float:
    if not math.isfinite(magnitude) or magnitude < 0:
        raise ValueError(f"a range magnitude must be finite and >= 0, got {magnitude}")
    # The zero-range convention of the module docstring, applied in one place.
    return magnitude if magnitude > 0 else 1.0


def smallest_exponent_covering(magnitude: float, limit: int) -> int:
    """Smallest integer ``e`` with ``magnitude <= limit * 2**e``, clamped to the supported exponent range.

    A ``magnitude`` of 0 counts as 1.0 (see the module docstring).
    """
    return _clamp_exponent(_exact_covering_exponent(_check_magnitude(magnitude), limit))


def _representable_magnitude(min_val: float, max_val: float, signed: bool) -> float:
    # An unsigned format clamps every negative value to 0 whatever the scale, so only the positive end counts.
    if signed:
        return max(abs(min_val), abs(max_val))
    return max(max_val, 0.0)


def minmax_exponent(min_val: float, max_val: float, bits: int, signed: bool) -> int:
    """No clipping: the smallest exponent whose integer range covers ``[min_val, max_val]``.

    Unsigned: ``ceil(log2(max / qmax))``. Signed: the larger of ``ceil(log2(max / qmax))`` and
    ``ceil(log2(min / qmin))``, so that both ends fit (``qmin = -2**(bits-1)`` reaches one step further
    than ``qmax``).
    """
    qmin, qmax = quant_range(bits, signed)
    if not signed or min_val >= 0:
        return smallest_exponent_covering(max(max_val, 0.0), qmax)
    if max_val <= 0:
        return smallest_exponent_covering(-min_val, -qmin)
    return max(smallest_exponent_covering(max_val, qmax), smallest_exponent_covering(-min_val, -qmin))


def hardware_exponent(min_val: float, max_val: float, bits: int, signed: bool) -> int:
    """Range clipping tailored to the integer format: its natural power-of-two span covers the range.

    ``e = ceil(log2(max_abs)) - bits`` (unsigned: ``2**bits`` steps) or ``- (bits - 1)`` (signed:
    ``2**(bits-1)`` steps per side). At most the top step is clipped: values in
    ``(qmax * 2**e, 2**(e + span)]`` saturate to ``qmax * 2**e``. Raw pixels (max 255, unsigned 8-bit) get
    ``e = 0``, exact; values in [0, 1] get ``e = -bits``.
    """
    check_bits(bits)
    span_bits = bits - 1 if signed else bits
    magnitude = _check_magnitude(_representable_magnitude(min_val, max_val, signed))
    return _clamp_exponent(_exact_covering_exponent(magnitude, 1) - span_bits)


def _positive_magnitudes(values: torch.Tensor, signed: bool) -> torch.Tensor:
    flat = values.detach().reshape(-1)
    return flat.abs() if signed else flat.clamp(min=0)


def percentile_value(magnitudes: torch.Tensor, percentile: float) -> float:
    """The nearest-rank percentile: the ``ceil(p/100 * n)``-th smallest of the ``n`` magnitudes.

    Nearest rank (no interpolation) so that the result is one of the observed values and any implementation
    gets the same number.
    """
    check_percentile(percentile)
    count = magnitudes.numel()
    if count == 0:
        raise ValueError("percentile of an empty tensor is undefined; observe some data first")
    rank = min(max(math.ceil(percentile / 100 * count), 1), count)
    return float(torch.kthvalue(magnitudes.reshape(-1).double(), rank).values)


def percentile_exponent(
    values: torch.Tensor, bits: int, signed: bool, percentile: float = DEFAULT_PERCENTILE
) -> int:
    """The ``minmax`` rule applied to the ``percentile``-th percentile of the magnitudes instead of the max.

    Magnitudes are ``|x|`` (signed) or ``max(x, 0)`` (unsigned). If the percentile is 0 while some value is
    not (more than ``100 - p`` percent zeros, as after a mostly-dead ReLU), the maximum is used instead:
    clipping every non-zero value would erase the tensor.
    """
    magnitudes = _positive_magnitudes(values, signed)
    magnitude = percentile_value(magnitudes, percentile)
    if magnitude == 0:
        magnitude = float(magnitudes.max().double())
    return minmax_exponent(-magnitude if signed else 0.0, magnitude, bits, signed)


def quantization_mse(values: torch.Tensor, exponent: int, bits: int, signed: bool) -> float:
    """Mean squared error of fake-quantizing ``values`` with ``exponent``, accumulated in float64."""
    values64 = values.detach().double()
    error = fake_quantize(values64, exponent, bits, signed) - values64
    return float((error * error).mean())


def mse_exponent(
    values: torch.Tensor,
    bits: int,
    signed: bool,
    min_val: float | None = None,
    max_val: float | None = None,
) -> int:
    """Exhaustive search: the exponent in ``e_minmax, e_minmax - 1, ..., e_minmax - bits`` with least MSE.

    ``e_minmax`` is ``minmax_exponent(min_val, max_val)``, by default of ``values`` themselves; an observer
    that samples its values passes the extremes of everything it saw. Below ``e_minmax - bits`` the scale
    is so fine that the top of the range saturates more than ``bits`` octaves down, never better. Ties go to
    the larger exponent (less clipping).
    """
    flat = values.detach().reshape(1, -1)
    if flat.numel() == 0:
        raise ValueError("mse_exponent needs at least one value; observe some data first")
    mins = [float(flat.min()) if min_val is None else min_val]
    maxs = [float(flat.max()) if max_val is None else max_val]
    return mse_exponents(flat, bits, signed, mins, maxs)[0]


def mse_exponents(
    columns: torch.Tensor, bits: int, signed: bool, min_vals: list[float], max_vals: list[float]
) -> list[int]:
    """:func:`mse_exponent` of every row of ``columns`` ``[channels, values]`` at once (one pass per
    candidate over the whole tensor, instead of one per channel and candidate)."""
    if columns.dim() != 2 or columns.shape[1] == 0:
        raise ValueError("mse_exponents needs a non-empty [channels, values] tensor; observe some data first")
    values = columns.detach()
    content = hashlib.blake2b(values.cpu().contiguous().view(-1).view(torch.uint8).numpy(), digest_size=16)
    key = (
        content.digest(),
        values.dtype,
        tuple(values.shape),
        bits,
        signed,
        tuple(min_vals),
        tuple(max_vals),
    )
    if key in _mse_memo:
        _mse_memo.move_to_end(key)
        return list(_mse_memo[key])
    exponents = _search_mse_exponents(values.double(), bits, signed, min_vals, max_vals)
    _mse_memo[key] = exponents
    while len(_mse_memo) > MSE_MEMO_ENTRIES:
        _mse_memo.popitem(last=False)
    return list(exponents)


def _search_mse_exponents(
    values: torch.Tensor, bits: int, signed: bool, min_vals: list[float], max_vals: list[float]
) -> list[int]:
    starts = torch.tensor(
        [minmax_exponent(low, high, bits, signed) for low, high in zip(min_vals, max_vals, strict=True)],
        dtype=torch.int64,
    )
    qmin, qmax = quant_range(bits, signed)
    best_exponents = starts.clone()
    best_errors = torch.full((values.shape[0],), math.inf, dtype=torch.float64)
    for offset in range(bits + 1):
        exponents = starts - offset
        valid = exponents >= MIN_EXPONENT
        if offset > 0 and not bool(valid.any()):
            break
        scales = torch.pow(2.0, exponents.clamp(min=MIN_EXPONENT).double()).unsqueeze(1)
        codes = torch.round(values / scales).clamp_(qmin, qmax)
        error = codes * scales - values
        errors = (error * error).mean(dim=1)
        # Strictly smaller only: on a tie the earlier, larger exponent stays.
        better = valid & (errors < best_errors)
        best_exponents = torch.where(better, exponents, best_exponents)
        best_errors = torch.where(better, errors, best_errors)
    return [int(e) for e in best_exponents]
