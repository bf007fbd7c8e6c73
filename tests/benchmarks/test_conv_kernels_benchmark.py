"""benchmarks/conv_kernels.py: every variant computes the same convolution, and the table shows them all."""

import numpy as np
from benchmark_scripts import load_benchmark

conv_kernels = load_benchmark("conv_kernels.py")


def test_every_variant_computes_the_same_convolution():
    shape = conv_kernels.ConvShape(batch=3, in_channels=8, out_channels=6, image=11, kernel=3, stride=2)
    rows = conv_kernels.measure(shape, rounds=1, threads=1, max_code=64)
    assert [row["variant"] for row in rows] == list(conv_kernels.VARIANTS)
    outputs = {row["variant"]: row["output"] for row in rows}
    integer = [outputs[variant] for variant in conv_kernels.VARIANTS[1:]]
    assert integer[0].shape == (3, 6, 5, 5) and integer[0].dtype == np.uint8
    assert len(np.unique(integer[0])) > 20  # a real spread of output codes, not a saturated block
    for other in integer[1:]:
        np.testing.assert_array_equal(other, integer[0])  # the im2col GEMM is the same convolution
    # Float accumulation may land a half-way value on the other side: at most one step apart.
    assert np.abs(outputs["fp32 Conv"].astype(int) - integer[0].astype(int)).max() <= 1
    assert rows[0]["ratio"] == 1.0
    assert all(row["gemm_ms"] is not None for row in rows if row["variant"].startswith("im2col"))
    table = conv_kernels.format_table(rows, shape)
    assert table.count("\n| ") == 2 + len(rows)  # header, separator, one line per variant
