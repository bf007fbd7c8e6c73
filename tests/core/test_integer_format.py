"""The one bits -> container rule, and the adapters' dtypes that follow it."""

import numpy as np
import pytest
import torch
from onnx import TensorProto

from capsnet_nncf_plugin.core.integer_format import (
    Encoding,
    IntegerType,
    carrier_encoding,
    code_type,
    container_bits,
    quant_range,
    signed_from_carrier,
    transport_encoding,
    weight_encoding,
)
from capsnet_nncf_plugin.core.torch_types import TORCH_DTYPES, TORCH_QUANTIZED_DTYPES
from capsnet_nncf_plugin.onnx_domain import ONNX_TYPES, signed_storage_type
from capsnet_nncf_plugin.ops.operands import storage_dtype

ALL_FORMATS = [(bits, signed) for bits in range(2, 17) for signed in (True, False)]


@pytest.mark.parametrize(("bits", "signed"), ALL_FORMATS)
def test_every_encoding_holds_every_code_of_its_format(bits, signed):
    low, high = quant_range(bits, signed)
    for encoding in (
        Encoding(code_type(bits, signed)),
        transport_encoding(bits, signed),
        carrier_encoding(bits, signed),
    ):
        stored_low, stored_high = encoding.stored_range(bits, signed)
        container_low, container_high = encoding.container.range
        assert container_low <= stored_low and stored_high <= container_high, (bits, signed, encoding)
        assert stored_high - stored_low == high - low
    # The sign can be read back from what a carrier stores.
    encoding = carrier_encoding(bits, signed)
    assert signed_from_carrier(encoding.container, encoding.zero_point) == signed


@pytest.mark.parametrize(
    ("bits", "width", "code", "transport"),
    [
        (2, 8, IntegerType.INT8, Encoding(IntegerType.UINT8, 128)),
        (8, 8, IntegerType.INT8, Encoding(IntegerType.UINT8, 128)),
        (9, 16, IntegerType.INT16, Encoding(IntegerType.INT16, 0)),
        (16, 16, IntegerType.INT16, Encoding(IntegerType.INT16, 0)),
    ],
)
def test_the_width_rule(bits, width, code, transport):
    assert container_bits(bits) == width
    assert code_type(bits, signed=True) == code
    assert transport_encoding(bits, signed=True) == transport
    assert transport_encoding(bits, signed=False).zero_point == 0


@pytest.mark.parametrize(
    ("bits", "unsigned", "expected"),
    [
        (2, False, Encoding(IntegerType.INT4)),
        (4, True, Encoding(IntegerType.INT4)),
        (5, False, Encoding(IntegerType.INT8)),
        (5, True, Encoding(IntegerType.UINT8, 128)),
        (8, True, Encoding(IntegerType.UINT8, 128)),
        (9, True, Encoding(IntegerType.INT16)),
    ],
)
def test_weight_storage(bits, unsigned, expected):
    assert weight_encoding(bits, unsigned) == expected


def test_every_framework_maps_every_container_to_a_dtype_of_the_same_range():
    for integer_type, dtype in TORCH_DTYPES.items():
        if integer_type is not IntegerType.INT4:  # INT4 codes wait in int8 tensors until export packs them
            info = torch.iinfo(dtype)
            assert (info.min, info.max) == integer_type.range
    for integer_type, dtype in TORCH_QUANTIZED_DTYPES.items():
        if integer_type.bits == 8:  # saturating a float probes the stored range
            stored = torch.quantize_per_tensor(torch.tensor([-1e6, 1e6]), 1.0, 0, dtype).int_repr()
            assert tuple(stored.tolist()) == integer_type.range
    for integer_type in IntegerType:
        assert integer_type in ONNX_TYPES
        if integer_type is not IntegerType.INT4:
            info = np.iinfo(np.dtype(integer_type.value))
            assert (info.min, info.max) == integer_type.range


@pytest.mark.parametrize(("bits", "signed"), ALL_FORMATS)
def test_the_ops_onnx_and_core_agree_on_signed_results(bits, signed):
    if signed:
        element = signed_storage_type(bits)
        assert element == (TensorProto.INT8 if bits <= 8 else TensorProto.INT16)
        assert storage_dtype(bits, True) == TORCH_DTYPES[code_type(bits, True)]
    else:  # unsigned 16-bit results come as int32: torch's uint16 supports almost no operations
        assert storage_dtype(bits, False) == (torch.uint8 if bits <= 8 else torch.int32)


def test_the_integer_format_module_is_plain_python():
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['torch'] = None; sys.modules['numpy'] = None; sys.modules['onnx'] = None\n"
        "from capsnet_nncf_plugin.core.integer_format import transport_encoding\n"
        "print(transport_encoding(4, True))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "UINT8" in result.stdout
