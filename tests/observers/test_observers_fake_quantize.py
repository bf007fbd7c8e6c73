import copy

import pytest
import torch
from torch.ao.quantization import MinMaxObserver

from capsnet_nncf_plugin.observers import (
    CalibrationError,
    FixedRangeObserver,
    PowerOfTwoFakeQuantize,
    PowerOfTwoObserver,
    PowerOfTwoPerChannelObserver,
    fake_quantize,
)

VALUES = torch.randn(2000, generator=torch.Generator().manual_seed(0)) * 3


def test_fake_quantizes_with_the_core_function_and_honours_a_4_bit_range():
    module = PowerOfTwoFakeQuantize(observer=PowerOfTwoObserver, bits=4, signed=True)
    output = module(VALUES)
    exponent = module.exponent
    assert exponent == module.activation_post_process.exponent
    assert torch.equal(output, fake_quantize(VALUES, exponent, 4, signed=True))
    assert torch.unique(output).numel() <= 16
    scale, zero_point = module.calculate_qparams()
    assert float(scale[0]) == 2.0**exponent and zero_point.tolist() == [0]
    assert (module.dtype, module.quant_min, module.quant_max) == (torch.qint8, -8, 7)


def test_sub_8_bit_unsigned_range_inside_quint8_is_honoured():
    module = PowerOfTwoFakeQuantize(bits=3, signed=False, clip="percentile", percentile=50.0)
    output = module(VALUES.abs())
    codes = output * 2.0**-module.exponent
    assert float(codes.max()) == 7.0 and float(codes.min()) == 0.0
    assert module.dtype == torch.quint8


def test_enable_and_disable_observer_and_fake_quant():
    module = PowerOfTwoFakeQuantize(bits=8, signed=True)
    module(torch.tensor([1.0, -1.0]))
    assert module.exponent == -6
    module.disable_observer()
    module(torch.tensor([100.0]))
    assert module.exponent == -6  # frozen
    assert module(torch.tensor([100.0])).tolist() == [127 * 2.0**-6]
    module.disable_fake_quant()
    passthrough = torch.tensor([0.1234])
    assert module(passthrough) is passthrough
    module.enable_observer()
    module(torch.tensor([100.0]))
    assert module.exponent == 0


def test_fake_quant_without_any_calibration_is_a_calibration_error():
    module = PowerOfTwoFakeQuantize(bits=8, name="fc")
    module.disable_observer()
    with pytest.raises(CalibrationError, match="observer 'fc' saw no data"):
        module(torch.ones(3))


def test_fixed_range_fake_quantize_needs_no_calibration():
    module = PowerOfTwoFakeQuantize(observer=FixedRangeObserver, bits=4, signed=False)
    module.disable_observer()
    assert module(torch.tensor([0.3, 1.0])).tolist() == [0.3125, 0.9375]
    assert module.exponent == -4


def test_per_channel_fake_quantize():
    module = PowerOfTwoFakeQuantize(observer=PowerOfTwoPerChannelObserver, bits=4, ch_axis=1)
    assert module.is_per_channel and module.ch_axis == 1 and module.qscheme == torch.per_channel_symmetric
    values = torch.randn(5, 3, 2) * torch.tensor([0.1, 1.0, 10.0]).reshape(1, 3, 1)
    output = module(values)
    exponents = module.exponent
    assert exponents.shape == (3,)
    assert torch.equal(output, fake_quantize(values, exponents, 4, signed=True, axis=1))
    assert module.calculate_qparams()[0].shape == (3,)


def test_with_args_deepcopy_and_state_dict_round_trip():
    constructor = PowerOfTwoFakeQuantize.with_args(observer=PowerOfTwoObserver, bits=6, clip="mse")
    module = constructor()
    module(VALUES.abs())
    clone = copy.deepcopy(module)
    assert clone.exponent == module.exponent
    restored = constructor()
    restored.load_state_dict(module.state_dict())
    restored.disable_observer()
    assert restored.exponent == module.exponent
    assert torch.equal(restored(VALUES), fake_quantize(VALUES, module.exponent, 6, signed=False))


def test_only_power_of_two_observers_are_accepted():
    with pytest.raises(TypeError, match="needs a power-of-two observer"):
        PowerOfTwoFakeQuantize(observer=MinMaxObserver)
