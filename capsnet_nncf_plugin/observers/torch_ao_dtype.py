"""Which torch dtype an observer reports to torch.ao for a (bits, signed) format.

torch.ao reads ``observer.dtype`` to decide whether to insert an observer at all and which quantize ops
convert emits; ``quant_min``/``quant_max`` carry the actual (narrower) range. The choice:

* up to 8 bits: ``torch.quint8`` (unsigned) / ``torch.qint8`` (signed). These are the only dtypes the native
  FX BackendConfig accepts for activations and weights; it silently ignores signed ``qint8`` activations,
  which is why activations default to unsigned.
* 9..16 bits signed: ``torch.int16``.
* 9..16 bits unsigned: ``torch.int32`` with ``quant_min = 0``. ``torch.uint16`` would be the natural
  container, but ``prepare_fx`` (torch 2.13) inserts no observer for it - it is missing from the list of
  observed dtypes - while ``torch.int32`` is observed and converted by the decomposed reference flow to
  ``quantized_decomposed.quantize_per_tensor(..., 0, 2**bits - 1, torch.int32)``, which clamps to the range.
"""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.observers.integer_format import quant_range

_QUANTIZED_DTYPE_RANGES = {
    torch.quint8: (0, 255),
    torch.qint8: (-128, 127),
    torch.qint32: (-(2**31), 2**31 - 1),
}


def torch_ao_dtype(bits: int, signed: bool) -> torch.dtype:
    """The dtype an observer of a ``bits``-wide, ``signed`` format reports to torch.ao (see module doc)."""
    quant_range(bits, signed)  # validates bits
    if bits <= 8:
        return torch.qint8 if signed else torch.quint8
    return torch.int16 if signed else torch.int32


def dtype_range(dtype: torch.dtype) -> tuple[int, int]:
    """The integer range a torch dtype (quantized or plain integer) can hold."""
    if dtype in _QUANTIZED_DTYPE_RANGES:
        return _QUANTIZED_DTYPE_RANGES[dtype]
    if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
        raise ValueError(f"dtype must be an integer or quantized dtype, got {dtype}")
    info = torch.iinfo(dtype)
    return info.min, info.max


def check_dtype_holds_format(dtype: torch.dtype, bits: int, signed: bool) -> torch.dtype:
    """Return ``dtype`` if it can hold every integer of the format, else raise ``ValueError``."""
    qmin, qmax = quant_range(bits, signed)
    low, high = dtype_range(dtype)
    if qmin < low or qmax > high:
        raise ValueError(
            f"dtype {dtype} holds {low}..{high} but a {bits}-bit {'signed' if signed else 'unsigned'} "
            f"format needs {qmin}..{qmax}; leave dtype unset to get {torch_ao_dtype(bits, signed)}"
        )
    return dtype
