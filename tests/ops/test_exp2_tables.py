"""The exponential tables and log2(e) constant hold the exactly rounded values the C++ kernels embed."""

import itertools
from decimal import Decimal, localcontext
from pathlib import Path

from capsnet_nncf_plugin.ops.exp2_tables import (
    EXP2_COARSE,
    EXP2_FINE,
    exp2_table_entry,
)
from capsnet_nncf_plugin.ops.softmax import LOG2E_Q24


def test_tables_equal_the_decimal_evaluation():
    assert [exp2_table_entry(i, 256) for i in range(256)] == list(EXP2_COARSE)
    assert [exp2_table_entry(j, 65536) for j in range(256)] == list(EXP2_FINE)


def test_coarse_table_against_an_exact_integer_bracket():
    # T = round(2^30 * 2^(-i/256))  <=>  T - 1/2 < 2^(30 - i/256) < T + 1/2
    #                                <=>  (2T - 1)^256 < 2^(31*256 - i) < (2T + 1)^256   (no ties: irrational)
    for index, entry in enumerate(EXP2_COARSE):
        power = 1 << (31 * 256 - index)
        assert (2 * entry - 1) ** 256 < power < (2 * entry + 1) ** 256, index


def test_fine_table_against_an_exact_integer_bracket_at_its_ends():
    # The same bracket with 65536th powers (about 2 million bits each): a few entries keep it fast.
    for index in (1, 128, 255):
        entry = EXP2_FINE[index]
        power = 1 << (31 * 65536 - index)
        assert (2 * entry - 1) ** 65536 < power < (2 * entry + 1) ** 65536, index


def test_table_shapes_and_monotonicity():
    assert len(EXP2_COARSE) == len(EXP2_FINE) == 256
    assert EXP2_COARSE[0] == EXP2_FINE[0] == 1 << 30
    assert all(a > b for a, b in itertools.pairwise(EXP2_COARSE))
    assert all(a > b for a, b in itertools.pairwise(EXP2_FINE))
    assert EXP2_COARSE[-1] > 1 << 29  # 2^(-255/256) > 1/2: every product stays within 2^60
    # Checksums quoted in docs/integer-ops.md for the C++ copy of the tables.
    assert (sum(EXP2_COARSE), sum(EXP2_FINE)) == (198551053195, 274507563692)


def test_log2e_constant():
    with localcontext() as context:
        context.prec = 50
        exact = Decimal(1 << 24) / Decimal(2).ln()  # log2(e) * 2^24 = 24204406.323...
    assert int(exact + Decimal("0.5")) == LOG2E_Q24


def test_the_specification_quotes_the_same_constants():
    specification = (Path(__file__).resolve().parents[2] / "docs" / "integer-ops.md").read_text()
    for quoted in (
        f"sum(EXP2_COARSE) = {sum(EXP2_COARSE)}",
        f"sum(EXP2_FINE) = {sum(EXP2_FINE)}",
        f"..., {EXP2_COARSE[-1]}",
        f"{EXP2_FINE[-1]}`",
        f"LOG2E_Q24 = {LOG2E_Q24}",
    ):
        assert quoted in specification, quoted
