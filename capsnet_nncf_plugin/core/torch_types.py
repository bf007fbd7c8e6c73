"""The torch dtypes of the integer containers chosen by :mod:`.integer_format`."""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.core.integer_format import IntegerType

#: Plain torch dtypes. INT4 codes live in int8 tensors until the export packs them two per byte.
TORCH_DTYPES: dict[IntegerType, torch.dtype] = {
    IntegerType.INT4: torch.int8,
    IntegerType.UINT8: torch.uint8,
    IntegerType.INT8: torch.int8,
    IntegerType.UINT16: torch.uint16,
    IntegerType.INT16: torch.int16,
    IntegerType.INT32: torch.int32,
}

#: torch quantized dtypes (the carriers of :func:`.integer_format.carrier_encoding`).
TORCH_QUANTIZED_DTYPES: dict[IntegerType, torch.dtype] = {
    IntegerType.UINT8: torch.quint8,
    IntegerType.INT8: torch.qint8,
    IntegerType.INT32: torch.qint32,
}

_TYPES_OF_DTYPES = {dtype: integer_type for integer_type, dtype in TORCH_QUANTIZED_DTYPES.items()}


def torch_dtype(integer_type: IntegerType) -> torch.dtype:
    """The plain torch dtype of a container."""
    return TORCH_DTYPES[integer_type]


def integer_type_of_quantized(dtype: torch.dtype) -> IntegerType:
    """The container of a torch quantized dtype (``quint8``, ``qint8``, ``qint32``)."""
    if dtype not in _TYPES_OF_DTYPES:
        raise ValueError(f"{dtype} is not a quantized dtype the plugin uses (quint8, qint8, qint32)")
    return _TYPES_OF_DTYPES[dtype]
