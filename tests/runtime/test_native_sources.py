"""The C++ sources embed the constants of the torch reference: the exp2 tables, log2(e), the limits."""

import re
from pathlib import Path

import pytest

from capsnet_nncf_plugin.core.integer_format import MAX_BITS, MIN_BITS
from capsnet_nncf_plugin.ops import EXP2_COARSE, EXP2_FINE, LOG2E_Q24, MAX_CAPSULE_DIM
from capsnet_nncf_plugin.ops.operands import MAX_OP_EXPONENT, MIN_OP_EXPONENT
from capsnet_nncf_plugin.ops.routing_quantization import MAX_ROUTING_ITERATIONS
from capsnet_nncf_plugin.ops.softmax import MAX_SOFTMAX_LENGTH

CSRC = Path(__file__).resolve().parents[2] / "csrc" / "capsnet_ops"

pytestmark = pytest.mark.skipif(not CSRC.is_dir(), reason="runs from a source checkout")


def cpp_table(text: str, name: str) -> list[int]:
    body = re.search(rf"{name}\[256\] = \{{(.*?)\}};", text, re.DOTALL).group(1)
    return [int(value) for value in re.findall(r"\d+", body)]


def cpp_constant(text: str, name: str) -> str:
    return re.search(rf"{name} = ([^;]+);", text).group(1)


def test_exp2_tables_match():
    text = (CSRC / "exp2_tables.h").read_text()
    assert cpp_table(text, "kExp2Coarse") == list(EXP2_COARSE)
    assert cpp_table(text, "kExp2Fine") == list(EXP2_FINE)


def test_constants_match():
    softmax = (CSRC / "softmax.h").read_text()
    assert int(cpp_constant(softmax, "kLog2eQ24")) == LOG2E_Q24
    limits = (CSRC / "limits.h").read_text()
    assert int(cpp_constant(limits, "kMinBits")) == MIN_BITS
    assert int(cpp_constant(limits, "kMaxBits")) == MAX_BITS
    assert int(cpp_constant(limits, "kMinExponent")) == MIN_OP_EXPONENT
    assert int(cpp_constant(limits, "kMaxExponent")) == MAX_OP_EXPONENT
    assert int(cpp_constant(limits, "kMaxCapsuleDim")) == MAX_CAPSULE_DIM
    assert int(cpp_constant(limits, "kMaxRoutingIterations")) == MAX_ROUTING_ITERATIONS
    assert cpp_constant(limits, "kMaxSoftmaxLength") == "int64_t{1} << 16"
    assert MAX_SOFTMAX_LENGTH == 1 << 16
