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

from capsnet_nncf_plugin.core.integer_format import IntegerType, code_type, quant_range
from capsnet_nncf_plugin.core.torch_types import TORCH_QUANTIZED_DTYPES, integer_type_of_quantized

#: The dtype torch.ao is told for a format's codes (module doc): quantized dtypes up to 8 bits; above,
#: int16 for signed formats and int32 for unsigned ones (torch.ao observes no uint16).
_TORCH_AO_DTYPES = {
    **TORCH_QUANTIZED_DTYPES,
    IntegerType.INT16: torch.int16,
    IntegerType.UINT16: torch.int32,
}


def torch_ao_dtype(bits: int, signed: bool) -> torch.dtype:
    """The dtype an observer of a ``bits``-wide, ``signed`` format reports to torch.ao (see module doc)."""
    return _TORCH_AO_DTYPES[code_type(bits, signed)]


def dtype_range(dtype: torch.dtype) -> tuple[int, int]:
    """The integer range a torch dtype (quantized or plain integer) can hold."""
    if dtype in TORCH_QUANTIZED_DTYPES.values():
        return integer_type_of_quantized(dtype).range
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
