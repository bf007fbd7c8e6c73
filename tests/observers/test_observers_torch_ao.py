import copy
import warnings

import pytest
import torch
from torch import nn
from torch.ao.quantization import QConfig, QConfigMapping
from torch.ao.quantization.backend_config import (
    BackendConfig,
    BackendPatternConfig,
    DTypeConfig,
    ObservationType,
)
from torch.ao.quantization.quantize_fx import convert_to_reference_fx, prepare_fx

from capsnet_nncf_plugin.observers import (
    FixedRangeObserver,
    PowerOfTwoFakeQuantize,
    PowerOfTwoObserver,
    coupling_observer,
    get_pot_qconfig,
    pot_activation_observer,
    pot_weight_observer,
    torch_ao_dtype,
)

EXAMPLE = (torch.randn(1, 3, 8, 8),)


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()


def calibration_batches() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.rand(4, 3, 8, 8, generator=generator) * 4 for _ in range(3)]


def assert_power_of_two(scale: torch.Tensor) -> None:
    mantissa, _ = torch.frexp(scale)
    assert scale.dtype == torch.float32 and bool((mantissa == 0.5).all())


def prepare(model: nn.Module, qconfig_mapping: QConfigMapping, **kwargs) -> torch.fx.GraphModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao's FX API announces its deprecation
        return prepare_fx(model, qconfig_mapping, EXAMPLE, **kwargs)


def observers_of(module: nn.Module) -> dict[str, nn.Module]:
    return {name: child for name, child in module.named_modules() if "activation_post_process" in name}


@pytest.fixture(scope="module")
def calibrated():
    """A tiny model prepared with 4-bit PoT weights and 8-bit quint8 activations, calibrated on 3 batches."""
    mapping = QConfigMapping().set_global(get_pot_qconfig(weight_bits=4, activation_bits=8))
    prepared = prepare(tiny_model(), mapping)
    outputs = [prepared(batch) for batch in calibration_batches()]
    return mapping, prepared, outputs


def test_get_pot_qconfig_builds_the_promised_observers():
    qconfig = get_pot_qconfig(weight_bits=4, activation_bits=8)
    assert isinstance(qconfig, QConfig)
    activation, weight = qconfig.activation(), qconfig.weight()
    assert isinstance(activation, PowerOfTwoObserver) and isinstance(weight, PowerOfTwoObserver)
    assert (activation.dtype, activation.quant_min, activation.quant_max) == (torch.quint8, 0, 255)
    assert (activation.clip, activation.signed) == ("hardware", False)
    assert (weight.dtype, weight.quant_min, weight.quant_max) == (torch.qint8, -8, 7)
    assert (weight.clip, weight.qscheme, weight.ch_axis) == ("mse", torch.per_channel_symmetric, 0)
    assert weight.reservoir_size is None  # weights observed whole
    both = get_pot_qconfig(clip="minmax", signed_activations=True)
    assert both.activation().clip == both.weight().clip == "minmax"
    assert both.activation().dtype == torch.qint8


def test_presets_reject_bad_arguments_at_once():
    with pytest.raises(ValueError, match=r"bits must be an integer in 2\.\.16"):
        get_pot_qconfig(weight_bits=17)
    with pytest.raises(ValueError, match="clip must be one of"):
        pot_activation_observer(clip="absmax")
    with pytest.raises(ValueError, match=r"bits must be an integer in 2\.\.16"):
        pot_weight_observer(bits=1)


def test_prepare_fx_inserts_our_observers_and_they_calibrate_to_powers_of_two(calibrated):
    _, prepared, outputs = calibrated
    observers = observers_of(prepared)
    assert len(observers) == 4  # input, conv-relu, flatten, linear outputs
    for observer in observers.values():
        assert isinstance(observer, PowerOfTwoObserver)
        assert (observer.bits, observer.dtype) == (8, torch.quint8)
        assert int(observer.batches_seen) == 3
        scale, zero_point = observer.calculate_qparams()
        assert_power_of_two(scale)
        assert zero_point.tolist() == [0]
    # Inputs in [0, 4): hardware rule, ceil(log2 4) - 8 = -6.
    assert observers["activation_post_process_0"].exponent == -6
    float_model = tiny_model()
    for batch, output in zip(calibration_batches(), outputs, strict=True):
        assert bool(torch.isfinite(output).all())
        assert torch.equal(output, float_model(batch))  # observers pass values through


def test_reference_conversion_gets_power_of_two_weight_scales_with_the_4_bit_range(calibrated):
    _, prepared, _ = calibrated
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = convert_to_reference_fx(copy.deepcopy(prepared))
    conv, linear = getattr(reference, "0")[0], getattr(reference, "3")
    for weighted in (conv, linear):
        assert_power_of_two(weighted.weight_scale)
        assert weighted.weight_scale.numel() == weighted.weight.shape[0]  # per output channel
        assert (weighted.weight_quant_min, weighted.weight_quant_max) == (-8, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert bool(torch.isfinite(reference(calibration_batches()[0])).all())


def test_calibrated_prepared_model_survives_state_dict_and_deepcopy(calibrated):
    mapping, prepared, _ = calibrated
    fresh = prepare(tiny_model(), mapping)
    fresh.load_state_dict(prepared.state_dict())
    copied = copy.deepcopy(prepared)
    for name, observer in observers_of(prepared).items():
        assert observers_of(fresh)[name].exponent == observer.exponent
        assert observers_of(copied)[name].exponent == observer.exponent


def test_fake_quantize_qconfig_simulates_the_quantized_model():
    qconfig = get_pot_qconfig(weight_bits=4, activation_bits=8, fake_quantize=True)
    mapping = QConfigMapping().set_global(qconfig)
    prepared = prepare(tiny_model(), mapping)
    batch = calibration_batches()[0]
    with torch.no_grad():
        output = prepared(batch)
    assert bool(torch.isfinite(output).all())
    # Top-level entries only; each fake-quantize holds its observer as a child.
    fake_quants = {name: module for name, module in observers_of(prepared).items() if "." not in name}
    assert len(fake_quants) == 4
    assert all(isinstance(module, PowerOfTwoFakeQuantize) for module in fake_quants.values())
    last = fake_quants["activation_post_process_3"]
    codes = output * 2.0**-last.exponent
    assert torch.equal(codes, torch.round(codes)) and float(codes.min()) >= 0 and float(codes.max()) <= 255
    with torch.no_grad():
        assert not torch.equal(output, tiny_model()(batch))


def test_coupling_observer_satisfies_the_native_softmax_constraint():
    class Routing(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.logits = nn.Linear(4, 3)
            self.softmax = nn.Softmax(dim=-1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.softmax(self.logits(x))

    coupling = QConfig(activation=coupling_observer(8), weight=pot_weight_observer())
    mapping = QConfigMapping().set_global(get_pot_qconfig()).set_object_type(nn.Softmax, coupling)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared = prepare_fx(Routing(), mapping, (torch.randn(2, 4),))
    assert not [warning for warning in caught if "ignoring" in str(warning.message)]
    observer = prepared.activation_post_process_2
    assert isinstance(observer, FixedRangeObserver) and observer.exponent == -8


@pytest.mark.parametrize(("signed", "dtype"), [(True, torch.int16), (False, torch.int32)])
def test_12_bit_observers_are_inserted_by_a_backend_that_declares_their_dtype(signed, dtype):
    activation = pot_activation_observer(bits=12, signed=signed)
    qconfig = QConfig(activation=activation, weight=pot_weight_observer(bits=12, per_channel=False))
    linear_with_12_bits = DTypeConfig(
        input_dtype=dtype, output_dtype=dtype, weight_dtype=torch.int16, bias_dtype=torch.float
    )
    backend = BackendConfig("pot12").set_backend_pattern_config(
        BackendPatternConfig(nn.Linear)
        .set_observation_type(ObservationType.OUTPUT_USE_DIFFERENT_OBSERVER_AS_INPUT)
        .set_dtype_configs([linear_with_12_bits])
    )
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    prepared = prepare(model, QConfigMapping().set_global(qconfig), backend_config=backend)
    observers = list(observers_of(prepared).values())
    assert observers and all(isinstance(observer, PowerOfTwoObserver) for observer in observers)
    prepared(calibration_batches()[0])
    assert all(observer.dtype == dtype and observer.quant_max in (2047, 4095) for observer in observers)


@pytest.mark.parametrize(
    ("bits", "signed", "dtype"),
    [
        (2, False, torch.quint8),
        (4, True, torch.qint8),
        (8, False, torch.quint8),
        (8, True, torch.qint8),
        (9, True, torch.int16),
        (16, True, torch.int16),
        (9, False, torch.int32),
        (16, False, torch.int32),
    ],
)
def test_torch_ao_dtype(bits, signed, dtype):
    assert torch_ao_dtype(bits, signed) == dtype
