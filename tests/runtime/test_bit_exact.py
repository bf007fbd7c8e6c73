"""The onnxruntime kernels against the torch reference, bit for bit: the worked examples of
docs/integer-ops.md, random inputs over shapes, dtypes, bit-widths 2..16, exponents -31..6 and iterations,
ShallowCaps- and DeepCaps-3D-sized routing, and extreme values at every bit-width."""

import numpy as np
import pytest
import torch
from routing_cases import agreeing_votes, calibrated_routing, uniform_routing

from capsnet_nncf_plugin.ops import RoutingQuantization, int_dynamic_routing, int_squash

ALL_BITS = list(range(2, 17))
EXPONENTS = [-31, -24, -15, -9, -4, -1, 0, 1, 3, 6]
INPUT_DTYPES = [np.int8, np.int16, np.int32]


def reference_squash(values: np.ndarray, exponent_in: int, bits_out: int, axis: int = -1) -> np.ndarray:
    return int_squash(torch.from_numpy(values), exponent_in, bits_out, dim=axis).numpy()


def reference_routing(votes: np.ndarray, params: RoutingQuantization) -> np.ndarray:
    return int_dynamic_routing(torch.from_numpy(votes), params).numpy()


def assert_bit_exact(result: np.ndarray, expected: np.ndarray) -> None:
    assert result.dtype == expected.dtype
    assert result.shape == expected.shape
    mismatches = np.flatnonzero(result.astype(np.int64) != expected.astype(np.int64))
    assert mismatches.size == 0, (
        f"{mismatches.size} of {result.size} values differ, first at flat index {mismatches[0]}: "
        f"{result.reshape(-1)[mismatches[0]]} != {expected.reshape(-1)[mismatches[0]]}"
    )


# --- the worked examples of docs/integer-ops.md, section 7 ---------------------------------------------


def test_squash_worked_example(ort_ops):
    result = ort_ops.run(ort_ops.squash_model(np.int8, 1, 0, 8), np.array([3, 4], dtype=np.int8))
    assert result.dtype == np.int8
    assert result.tolist() == [74, 98]
    # The same capsule along a leading axis, from int32 storage, and negated.
    model = ort_ops.squash_model(np.int32, 2, 0, 8, axis=0)
    assert ort_ops.run(model, np.array([[3, -3], [4, -4]], dtype=np.int32)).tolist() == [[74, -74], [98, -98]]


EXAMPLE_VOTES = np.array([[[[8, 0], [0, 8]], [[8, 0], [0, -8]]]], dtype=np.int8)


def test_routing_worked_example(ort_ops):
    params = RoutingQuantization(2, -4, 8, (8, 8), (-4, -4), (8, 8), (8, 8), (-4,), (8,))
    result = ort_ops.run(ort_ops.routing_model(np.int8, params), EXAMPLE_VOTES)
    assert result.dtype == np.int8
    assert result.tolist() == [[[31, 0], [0, 0]]]
    # One iteration stops after V_0 = IntSquash([8, 0], -4, 8) = 26; softmax of [2, 0] at 2^-4 gives
    # [136, 120], whose tie 8.5 -> 9 makes the second iteration's 31.
    one = RoutingQuantization(1, -4, 8, (8,), (-4,), (8,), (8,))
    assert ort_ops.run(ort_ops.routing_model(np.int8, one), EXAMPLE_VOTES).tolist() == [[[26, 0], [0, 0]]]


# --- IntSquash: random and extreme inputs --------------------------------------------------------------


@pytest.mark.parametrize("bits_out", ALL_BITS)
def test_squash_random_inputs(ort_ops, bits_out):
    rng = np.random.default_rng(bits_out)
    for exponent_in in EXPONENTS:
        dtype = INPUT_DTYPES[(bits_out + exponent_in) % 3]
        input_bits = 8 if dtype == np.int8 else 16
        model = ort_ops.squash_model(dtype, 3, exponent_in, bits_out)
        session = ort_ops.session(model)
        for shape in [(5, 7, 16), (2, 3, 1), (1, 1, 64), (0, 4, 8), (3, 100, 8)]:
            # Full-range values, small values (|s| near 1 at these exponents), and planted extremes.
            for scale_bits in (input_bits, 4):
                values = ort_ops.random_signed(rng, shape, scale_bits, dtype)
                result = session.run(None, {"x": values})[0]
                assert_bit_exact(result, reference_squash(values, exponent_in, bits_out))


@pytest.mark.parametrize(("rank", "axis"), [(1, 0), (2, 0), (3, 1), (4, -3), (5, 2), (5, -1)])
def test_squash_axes(ort_ops, rank, axis):
    rng = np.random.default_rng(rank * 10 + axis)
    shape = tuple(int(size) for size in rng.integers(1, 5, size=rank))
    shape = (*shape[:axis], 13, *shape[axis + 1 :]) if axis != -1 else (*shape[:-1], 13)
    for bits_out, exponent_in in [(8, -12), (16, -3), (5, 2)]:
        values = ort_ops.random_signed(rng, shape, 16, np.int16)
        result = ort_ops.run(ort_ops.squash_model(np.int16, rank, exponent_in, bits_out, axis=axis), values)
        assert_bit_exact(result, reference_squash(values, exponent_in, bits_out, axis))


@pytest.mark.parametrize("bits_out", ALL_BITS)
def test_squash_extreme_values(ort_ops, bits_out):
    low, high = -(1 << 15), (1 << 15) - 1
    capsules = np.array(
        [
            [low] * 64,  # the largest norm: N2 = 2^36
            [high] * 64,
            [low] + [0] * 63,  # one component: saturates to -(2^K) at large |x|
            [high] + [0] * 63,
            [1] + [0] * 63,  # the smallest non-zero norm
            [-1] + [0] * 63,
            [0] * 64,  # N2 = 0: R = 0, V = 0
            [low, high] * 32,
            [1, -1] * 32,
        ],
        dtype=np.int32,
    )
    for exponent_in in (-31, -30, -16, -8, 0, 5, 6):
        for dtype, values in ((np.int32, capsules), (np.int16, capsules.astype(np.int16))):
            model = ort_ops.squash_model(dtype, 2, exponent_in, bits_out)
            assert_bit_exact(ort_ops.run(model, values), reference_squash(values, exponent_in, bits_out))
        narrow = np.clip(capsules, -128, 127).astype(np.int8)
        model = ort_ops.squash_model(np.int8, 2, exponent_in, bits_out)
        assert_bit_exact(ort_ops.run(model, narrow), reference_squash(narrow, exponent_in, bits_out))


def test_squash_output_dtype_follows_bits(ort_ops):
    values = np.array([[3, 4]], dtype=np.int16)
    for bits_out in ALL_BITS:
        result = ort_ops.run(ort_ops.squash_model(np.int16, 2, 0, bits_out), values)
        assert result.dtype == (np.int8 if bits_out <= 8 else np.int16)


# --- IntDynamicRouting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", ALL_BITS)
def test_routing_random_formats(ort_ops, bits):
    """Random shapes and random (bound-checked) formats with every bit-width of the case ``bits``."""
    rng = np.random.default_rng(100 + bits)
    for case in range(6):
        batch, inputs, outputs, dim = (
            int(rng.integers(low, high)) for low, high in ((0, 4), (1, 40), (1, 12), (1, 20))
        )
        if case == 0:
            batch = 0
        params = ort_ops.random_params(rng, inputs, dim, bits=bits if case % 2 else None)
        dtypes = INPUT_DTYPES if params.votes_bits <= 8 else INPUT_DTYPES[1:]
        dtype = dtypes[case % len(dtypes)]
        votes = ort_ops.random_signed(rng, (batch, inputs, outputs, dim), params.votes_bits, dtype)
        result = ort_ops.run(ort_ops.routing_model(dtype, params), votes)
        assert_bit_exact(result, reference_routing(votes, params))


@pytest.mark.parametrize("bits", ALL_BITS)
def test_routing_calibrated_formats(ort_ops, bits):
    """Formats from a float calibration pass: values that use their range instead of saturating."""
    generator = torch.Generator().manual_seed(bits)
    for shape, scale, iterations in (
        ((3, 30, 6, 8), 0.05, 3),
        ((2, 12, 10, 16), 0.5, 2),
        ((4, 7, 3, 4), 2.0, 4),
    ):
        votes, _, params = calibrated_routing(agreeing_votes(shape, scale, generator)[0], bits, iterations)
        values = votes.numpy()
        result = ort_ops.run(ort_ops.routing_model(values.dtype, params), values)
        assert_bit_exact(result, reference_routing(values, params))
        # Also from int32 storage.
        wide = values.astype(np.int32)
        assert_bit_exact(
            ort_ops.run(ort_ops.routing_model(np.int32, params), wide), reference_routing(wide, params)
        )


@pytest.mark.parametrize(
    ("shape", "scale", "bits", "coupling_bits"),
    [
        ((4, 1152, 10, 16), 0.05, 16, 16),  # ShallowCaps class capsules
        ((4, 1152, 10, 16), 0.01, 8, 8),
        ((4, 1152, 10, 16), 0.05, 4, 10),
        ((64, 32, 32, 8), 0.5, 16, 16),  # DeepCaps 3D routing, 4x4 positions of 4 images folded into N
        ((64, 32, 32, 8), 0.5, 8, 8),
        ((64, 32, 32, 8), 0.5, 3, 6),
    ],
)
def test_routing_model_sizes(ort_ops, shape, scale, bits, coupling_bits):
    generator = torch.Generator().manual_seed(bits * 7 + shape[1])
    votes, _, params = calibrated_routing(
        agreeing_votes(shape, scale, generator)[0], bits, 3, coupling_bits=coupling_bits
    )
    values = votes.numpy()
    expected = reference_routing(values, params)
    assert_bit_exact(ort_ops.run(ort_ops.routing_model(values.dtype, params), values, threads=2), expected)
    # Not all saturated or zero: the formats make the outputs carry information.
    assert len(np.unique(expected)) >= (9 if bits >= 8 else 3)


@pytest.mark.parametrize("bits", ALL_BITS)
def test_routing_extreme_votes(ort_ops, bits):
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    dtype = np.int8 if bits <= 8 else np.int16
    rng = np.random.default_rng(bits)
    votes = np.stack(
        [
            np.full((6, 5, 4), low),
            np.full((6, 5, 4), high),
            np.where(rng.random((6, 5, 4)) < 0.5, low, high),
            np.zeros((6, 5, 4)),
        ]
    ).astype(dtype)
    for exponents in ((-31, -31, -31), (6, 6, 6), (-8, 0, -4)):
        votes_exponent, pre_exponent, logit_exponent = exponents
        params = uniform_routing(bits, votes_exponent, pre_exponent, logit_exponent)
        assert_bit_exact(
            ort_ops.run(ort_ops.routing_model(dtype, params), votes), reference_routing(votes, params)
        )


def test_routing_results_do_not_depend_on_threads(ort_ops):
    generator = torch.Generator().manual_seed(5)
    votes, _, params = calibrated_routing(agreeing_votes((40, 32, 16, 8), 0.5, generator)[0], 12)
    values = votes.numpy()
    model = ort_ops.routing_model(values.dtype, params)
    single = ort_ops.run(model, values, threads=1)
    assert_bit_exact(single, reference_routing(values, params))
    for threads in (2, 3, 4):
        assert_bit_exact(ort_ops.run(model, values, threads=threads), single)


def test_routing_every_iteration_count(ort_ops):
    rng = np.random.default_rng(16)
    votes = ort_ops.random_signed(rng, (2, 6, 5, 4), 10, np.int16)
    for iterations in range(1, 17):
        params = RoutingQuantization(
            iterations,
            -9,
            10,
            [12] * iterations,
            [-6] * iterations,
            [12] * iterations,
            [10] * iterations,
            [-5] * (iterations - 1),
            [10] * (iterations - 1),
        )
        assert_bit_exact(
            ort_ops.run(ort_ops.routing_model(np.int16, params), votes), reference_routing(votes, params)
        )


@pytest.mark.parametrize("inputs", [2**16 - 1, 2**16 + 2**10])
def test_routing_at_the_int32_accumulator_boundary(ort_ops, inputs):
    """sum_i C U of 8-bit votes and 8-bit couplings (C = 255 for a single output capsule) provably fits
    int32 for I < 2^16, where the kernel accumulates in int32; at I = 2^16 + 2^10 it reaches
    -66560 * 255 * 128 < -2^31 and must be accumulated in int64. Both sides, at the extreme vote -128."""
    params = RoutingQuantization(2, -6, 8, (8, 8), (3, 3), (16, 16), (8, 8), (-10,), (8,))
    votes = np.full((1, inputs, 1, 2), -128, dtype=np.int8)
    expected = reference_routing(votes, params)
    assert (expected < 0).all()  # a wrapped int32 sum would come out positive
    assert_bit_exact(ort_ops.run(ort_ops.routing_model(np.int8, params), votes), expected)
