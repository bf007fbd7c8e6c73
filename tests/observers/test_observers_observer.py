import copy
import io

import pytest
import torch
from torch.ao.quantization.observer import FixedQParamsObserver

from capsnet_nncf_plugin.errors import CapsqError
from capsnet_nncf_plugin.observers import (
    CalibrationError,
    FixedRangeObserver,
    PowerOfTwoObserver,
    PowerOfTwoPerChannelObserver,
    coupling_observer,
    minmax_exponent,
    mse_exponent,
    squash_output_observer,
)


def assert_exact_powers_of_two(scale: torch.Tensor, exponents: list[int]) -> None:
    assert scale.dtype == torch.float32
    mantissa, exponent = torch.frexp(scale)
    assert bool((mantissa == 0.5).all())
    assert (exponent - 1).tolist() == exponents


def test_per_tensor_minmax_tracks_running_extremes_and_returns_its_input():
    observer = PowerOfTwoObserver(bits=8, signed=True)
    first = torch.tensor([0.5, -0.25])
    assert observer(first) is first
    assert observer.exponent == -7  # 0.5 <= 127 * 2**-7
    observer(torch.tensor([3.0, -0.1]))
    assert observer.exponent == -5  # 3 <= 127 * 2**-5 = 3.97
    observer(torch.tensor([-5.0]))
    assert observer.exponent == -4  # 5 <= 128 * 2**-4 = 8; 5 > 128 * 2**-5 = 4
    scale, zero_point = observer.calculate_qparams()
    assert_exact_powers_of_two(scale, [-4])
    assert zero_point.tolist() == [0] and not zero_point.is_floating_point()


@pytest.mark.parametrize(
    ("bits", "signed", "dtype", "quant_range"),
    [
        (4, True, torch.qint8, (-8, 7)),
        (3, False, torch.quint8, (0, 7)),
        (8, False, torch.quint8, (0, 255)),
        (12, True, torch.int16, (-2048, 2047)),
        (12, False, torch.int32, (0, 4095)),
    ],
)
def test_torch_ao_attributes(bits, signed, dtype, quant_range):
    observer = PowerOfTwoObserver(bits=bits, signed=signed)
    assert observer.dtype == dtype
    assert (observer.quant_min, observer.quant_max) == quant_range
    assert observer.qscheme == torch.per_tensor_symmetric
    assert observer.is_dynamic is False
    per_channel = PowerOfTwoObserver(bits=bits, signed=signed, ch_axis=1)
    assert per_channel.qscheme == torch.per_channel_symmetric and per_channel.ch_axis == 1


def test_per_channel_exponents_of_weights():
    weight = torch.zeros(3, 2, 2)
    weight[0, 0, 0], weight[1, 1, 1], weight[2, 0, 1] = -1.0, 10.0, 0.1
    observer = PowerOfTwoPerChannelObserver(bits=8)
    assert observer.signed and observer.ch_axis == 0
    observer(weight)
    # -1 <= -128 * 2**-7; 10 <= 127 * 2**-3 = 15.9; 0.1 <= 127 * 2**-10 = 0.124
    assert observer.exponent.tolist() == [-7, -3, -10]
    scale, zero_point = observer.calculate_qparams()
    assert_exact_powers_of_two(scale, [-7, -3, -10])
    assert zero_point.tolist() == [0, 0, 0]


def test_per_channel_activations_along_axis_1():
    activations = torch.ones(2, 3, 4, 4) * torch.tensor([1.0, 2.0, 200.0]).reshape(1, 3, 1, 1)
    observer = PowerOfTwoObserver(bits=8, clip="hardware", ch_axis=1)
    observer(activations)
    assert observer.exponent.tolist() == [-8, -7, 0]
    with pytest.raises(CalibrationError, match="saw 2 channels along axis 1 after 3"):
        observer(torch.ones(2, 2, 4, 4))


def test_percentile_and_mse_observers_use_a_bounded_reproducible_sample():
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 500, generator=generator) for _ in range(3)]
    observers = [PowerOfTwoObserver(bits=6, signed=True, clip="mse", reservoir_size=300) for _ in range(2)]
    for observer in observers:
        for batch in batches:
            observer(batch)
    first, second = observers
    assert first.sample_values.shape == (1, 300)
    assert torch.equal(first.sample_values, second.sample_values)
    assert bool(torch.isin(first.sample_values, torch.cat([batch.reshape(-1) for batch in batches])).all())
    # The search starts from the extremes of all 6000 values, not of the sample.
    everything = torch.cat([batch.reshape(-1) for batch in batches])
    assert first.exponent == mse_exponent(
        first.sample_values[0], 6, True, float(everything.min()), float(everything.max())
    )


def test_the_sample_is_uniform_over_batches():
    observer = PowerOfTwoObserver(clip="percentile", reservoir_size=1000, seed=3)
    for batch_index in range(10):
        observer(torch.full((1000,), float(batch_index)))
    counts = torch.bincount(observer.sample_values.reshape(-1).long(), minlength=10)
    # Each batch expects 100 of the 1000 kept values (binomial sd ~ 9.5); the seed fixes the outcome.
    assert counts.sum() == 1000 and bool((counts > 60).all()) and bool((counts < 140).all())


def test_small_data_is_kept_whole_and_weights_keep_only_the_latest_tensor():
    activations = PowerOfTwoObserver(clip="percentile", reservoir_size=100)
    activations(torch.arange(30.0))
    activations(torch.arange(30.0, 60.0))
    assert sorted(activations.sample_values.reshape(-1).tolist()) == list(range(60))
    weights = PowerOfTwoPerChannelObserver(bits=4, clip="mse", reservoir_size=None)
    weight = torch.randn(5, 7)
    weights(weight)
    weights(weight)
    assert torch.equal(weights.sample_values, weight)


def test_non_finite_calibration_data_is_a_calibration_error_naming_the_observer():
    observer = PowerOfTwoObserver(clip="mse")
    expected = r"observer saw non-finite values \(1 NaN, 0 infinite\)"
    with pytest.raises(CalibrationError, match=expected) as info:
        observer(torch.tensor([1.0, float("nan")]))
    assert isinstance(info.value, CapsqError)
    assert "check the calibration data and the layer that produces this tensor" in str(info.value)
    observer.name = "conv1"
    expected = r"observer 'conv1' saw non-finite values \(0 NaN, 2 infinite\)"
    with pytest.raises(CalibrationError, match=expected):
        observer(torch.tensor([float("inf"), -float("inf"), 0.0]))
    assert int(observer.batches_seen) == 0  # the bad batches left no trace
    with pytest.raises(CalibrationError, match="non-finite"):
        observer(torch.tensor([1e300], dtype=torch.float64))  # finite in float64, inf in float32


def test_asking_for_qparams_before_data_names_the_fix():
    with pytest.raises(CalibrationError, match="observer saw no data: run calibration batches through"):
        PowerOfTwoObserver().calculate_qparams()
    with pytest.raises(CalibrationError, match=r"observer 'caps\.routing' saw no data.*before convert_fx"):
        PowerOfTwoObserver(name="caps.routing").exponent  # noqa: B018


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"bits": 1}, r"bits must be an integer in 2\.\.16"),
        ({"bits": 17}, r"bits must be an integer in 2\.\.16"),
        ({"clip": "max"}, "clip must be one of minmax, hardware, percentile, mse"),
        ({"percentile": 0}, r"percentile must be a number in \(0, 100\]"),
        ({"reservoir_size": 0}, "reservoir_size must be a positive int or None"),
        ({"is_dynamic": True}, "static quantization"),
        ({"bits": 12, "dtype": torch.qint8}, "leave dtype unset to get torch.int32"),
        ({"seed": -1}, "seed must be an int"),
    ],
)
def test_bad_arguments_are_rejected(arguments, message):
    with pytest.raises(ValueError, match=message):
        PowerOfTwoObserver(**arguments)


def test_with_args_builds_independent_observers():
    constructor = PowerOfTwoObserver.with_args(bits=4, signed=True, clip="hardware")
    first, second = constructor(), constructor()
    assert first is not second and (first.bits, first.signed, first.clip) == (4, True, "hardware")
    first(torch.tensor([3.0]))
    assert second.batches_seen == 0 and first.exponent == -1  # ceil(log2 3) - 3


def test_deepcopy_carries_statistics_and_is_independent():
    observer = PowerOfTwoObserver(bits=8, clip="percentile", reservoir_size=500)
    observer(torch.linspace(0, 1, 200))
    clone = copy.deepcopy(observer)
    assert clone.exponent == observer.exponent == -7
    clone(torch.tensor([100.0]))
    assert observer.exponent == -7 and float(observer.max_val[0]) == 1.0


def test_state_dict_round_trip_restores_the_exponents():
    observer = PowerOfTwoPerChannelObserver(bits=4, clip="mse", reservoir_size=64, seed=5)
    generator = torch.Generator().manual_seed(1)
    for _ in range(2):
        observer(torch.randn(3, 40, generator=generator) * torch.tensor([[1.0], [4.0], [0.01]]))
    buffer = io.BytesIO()
    torch.save(observer.state_dict(), buffer)
    buffer.seek(0)
    restored = PowerOfTwoPerChannelObserver(bits=4, clip="mse", reservoir_size=64, seed=5)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(restored.exponent, observer.exponent)
    assert torch.equal(restored.calculate_qparams()[0], observer.calculate_qparams()[0])
    # Sampling continues identically after the restore.
    batch = torch.randn(3, 40, generator=generator)
    observer(batch)
    restored(batch)
    assert torch.equal(restored.sample_values, observer.sample_values)


def test_exponent_of_all_zero_data_is_defined():
    observer = PowerOfTwoObserver(bits=8, signed=True, clip="mse")
    observer(torch.zeros(16))
    assert observer.exponent == minmax_exponent(-1.0, 1.0, 8, signed=True) == -6


def test_fixed_range_observers_ignore_the_data_but_check_it():
    coupling = coupling_observer(8)()
    assert isinstance(coupling, FixedRangeObserver) and isinstance(coupling, FixedQParamsObserver)
    assert coupling.exponent == -8
    scale, zero_point = coupling.calculate_qparams()  # no data needed
    assert_exact_powers_of_two(scale, [-8])
    assert float(scale[0]) == 2.0**-8 and zero_point.tolist() == [0]
    assert (coupling.dtype, coupling.quant_min, coupling.quant_max) == (torch.quint8, 0, 255)
    coupling(torch.tensor([0.0, 0.3, 5.0]))
    assert coupling.exponent == -8
    squash = squash_output_observer(4)()
    assert (squash.exponent, squash.dtype, squash.quant_min, squash.quant_max) == (-3, torch.qint8, -8, 7)
    squash.name = "primary.squash"
    with pytest.raises(CalibrationError, match=r"observer 'primary\.squash' saw non-finite values"):
        squash(torch.tensor([float("nan")]))


def test_fixed_range_observer_survives_deepcopy_and_state_dict():
    observer = FixedRangeObserver(bits=6, signed=True, max_abs=6.0)
    assert observer.exponent == -2  # ceil(log2 6) - 5
    restored = FixedRangeObserver(bits=6, signed=True, max_abs=6.0)
    restored.load_state_dict(copy.deepcopy(observer).state_dict())
    assert restored.exponent == -2
