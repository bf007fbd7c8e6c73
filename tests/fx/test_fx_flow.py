"""The plain torch.ao flow with the plugin's configs: prepare_fx, calibrate, convert_fx."""

import gc
import weakref

import pytest
import torch
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from capsnet_nncf_plugin.fx import (
    get_capsnet_backend_config,
    get_capsnet_convert_custom_config,
    get_capsnet_prepare_custom_config,
    get_capsnet_qconfig_mapping,
    quantization_points,
    quantize_fx,
)
from capsnet_nncf_plugin.fx.calibration import calibrate
from capsnet_nncf_plugin.fx.workflow import convert_capsnet_fx, prepare_capsnet_fx
from capsnet_nncf_plugin.observers import CalibrationError, quant_range
from capsnet_nncf_plugin.quantized import QuantizedModule


def plain_flow(model, images, **bits):
    backend = get_capsnet_backend_config()
    prepared = prepare_fx(
        model,
        get_capsnet_qconfig_mapping(**bits),
        (images[:2],),
        prepare_custom_config=get_capsnet_prepare_custom_config(),
        backend_config=backend,
    )
    for batch in images.split(8):
        prepared(batch)
    return convert_fx(
        prepared, convert_custom_config=get_capsnet_convert_custom_config(), backend_config=backend
    )


def test_plain_flow_swaps_every_layer_for_a_quantized_module(tiny_model, images):
    quantized = plain_flow(tiny_model, images)
    kinds = {
        name: type(module).__name__
        for name, module in quantized.named_modules()
        if isinstance(module, QuantizedModule)
    }
    assert kinds == {
        "conv": "QuantizedLayer",
        "primary": "QuantizedSquashLayer",
        "classes": "QuantizedRoutingLayer",
    }
    assert quantized(images).shape == (16, 3)


def test_sixteen_bits_match_float_and_eight_bits_keep_the_decision(tiny_model, images):
    with torch.no_grad():
        reference = tiny_model(images)
        wide = plain_flow(tiny_model, images, weight_bits=16, activation_bits=16, routing_bits=16)(images)
        narrow = plain_flow(tiny_model, images)(images)
    assert (wide - reference).abs().max() < 2e-3
    assert (narrow - reference).abs().max() < 0.05
    assert (narrow.argmax(1) == reference.argmax(1)).float().mean() >= 0.9


def test_every_scale_is_a_power_of_two_and_4_bit_weights_have_16_values(tiny_model, images):
    quantized = plain_flow(tiny_model, images, weight_bits=4, activation_bits=8)
    quantized(images)
    points = quantization_points(quantized)
    assert {p.kind for p in points} == {"weight", "activation", "routing"}
    for point in points:
        exponents = point.exponent if isinstance(point.exponent, tuple) else (point.exponent,)
        for exponent in exponents:
            mantissa, _ = torch.frexp(torch.tensor(2.0**exponent))
            assert mantissa.item() == 0.5
    for module in quantized.modules():
        weights = getattr(module, "weights", None)
        if weights is not None:
            assert weights.quantizer.bits == 4
            assert int(weights.codes.min()) >= -8 and int(weights.codes.max()) <= 7
            for channel in weights.values:
                assert channel.unique().numel() <= 16


def test_sub_8_bit_activations_keep_their_range(tiny_model, images):
    quantized = plain_flow(tiny_model, images, activation_bits=4, routing_bits=4)
    outputs = {}
    for name in ("conv", "primary", "classes"):
        getattr(quantized, name).register_forward_hook(
            lambda m, i, o, name=name: outputs.__setitem__(name, o)
        )
    quantized(images)
    for name, output in outputs.items():
        quantizer = getattr(quantized, name).output_quantizer
        assert quantizer.bits == 4
        assert output.is_quantized and output.q_scale() == 2.0**quantizer.exponent, name
        codes = output.dequantize() / 2.0**quantizer.exponent
        assert torch.equal(codes, codes.round()), name
        low, high = quant_range(4, quantizer.signed)
        assert codes.min() >= low and codes.max() <= high, name
        assert codes.unique().numel() <= 16


def test_routing_points_cover_every_iteration(tiny_model, images):
    quantized = plain_flow(
        tiny_model, images, routing_bits={"logits": 6, "coupling": 5, "pre_activation": 7, "output": 8}
    )
    quantized(images)
    routing = [p for p in quantization_points(quantized) if p.kind == "routing"]
    names = [p.name for p in routing]
    assert names == [
        "classes.c[0]",
        "classes.s[0]",
        "classes.v[0]",
        "classes.b[1]",
        "classes.c[1]",
        "classes.s[1]",
        "classes.v[1]",
        "classes.b[2]",
        "classes.c[2]",
        "classes.s[2]",
        "classes.v[2]",
    ]
    bits = {p.name.split(".")[1][0]: p.bits for p in routing}
    assert bits == {"b": 6, "c": 5, "s": 7, "v": 8}
    coupling = next(p for p in routing if p.name == "classes.c[1]")
    assert coupling.exponent == -5 and coupling.elements_per_sample == 64 * 3


def test_per_layer_bits_from_an_allocation(tiny_model, images):
    allocation = {
        "conv": {"weight": 3, "activation": 6},
        "classes": {"weight": 5, "activation": 7, "routing": 6},
    }
    quantized = plain_flow(tiny_model, images, allocation=allocation)
    quantized(images)
    by_name = {p.name: p for p in quantization_points(quantized)}
    assert by_name["conv.weight"].bits == 3 and by_name["conv.output"].bits == 6
    assert by_name["primary.conv.weight"].bits == 8
    assert by_name["classes.votes.weight"].bits == 5 and by_name["classes.votes"].bits == 7
    assert by_name["classes.b[1]"].bits == 6


def test_quantize_fx_leaves_the_float_model_untouched(tiny_model, images):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    quantize_fx(tiny_model, images.split(8))
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())


def test_prepared_and_quantized_models_are_freed_once_dropped(tiny_model, images):
    # torch 2.13's FX flow caches a device per model, keyed by the model: without the release every
    # candidate of an allocation search stayed in memory with its observers' samples.
    prepared = prepare_capsnet_fx(tiny_model, get_capsnet_qconfig_mapping(clip="mse"), images[:2])
    calibrate(prepared, images.split(8))
    quantized = convert_capsnet_fx(prepared)
    models = [weakref.ref(prepared), weakref.ref(quantized)]
    del prepared, quantized
    gc.collect()
    assert [model() for model in models] == [None, None]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"weight_bits": 1}, "weight_bits must be an integer in 2..16"),
        ({"activation_bits": 17}, "activation_bits must be an integer in 2..16"),
        ({"routing_bits": 0}, "routing logits bits must be an integer in 2..16"),
        ({"clip": "max"}, "clip must be one of"),
    ],
)
def test_bad_bits_and_modes_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        get_capsnet_qconfig_mapping(**arguments)


def test_convert_without_calibration_says_what_to_do(tiny_model, images):
    backend = get_capsnet_backend_config()
    prepared = prepare_fx(
        tiny_model,
        get_capsnet_qconfig_mapping(),
        (images[:2],),
        prepare_custom_config=get_capsnet_prepare_custom_config(),
        backend_config=backend,
    )
    with pytest.raises(CalibrationError, match="saw no data: run calibration batches"):
        convert_fx(
            prepared, convert_custom_config=get_capsnet_convert_custom_config(), backend_config=backend
        )


def test_nan_in_a_calibration_batch_is_reported(tiny_model, images):
    images = images.clone()
    images[0, 0, 0, 0] = float("nan")
    with pytest.raises(CalibrationError, match="non-finite values"):
        quantize_fx(tiny_model, [images])


def test_untraceable_model_is_a_clear_error(images):
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    # Not traceable by torch.fx, so captured; torch.export refuses data-dependent control flow too.
    with pytest.raises(ValueError, match=r"torch\.export cannot capture DataDependent .*fixed loop counts"):
        quantize_fx(DataDependent(), [images])


def test_input_points_are_read_from_the_graph_without_running_it(tiny_model, images):
    points = {p.name: p for p in quantization_points(plain_flow(tiny_model, images))}
    # Raw pixels x 2^-8 in [0, 1): unsigned 8-bit with scale 2^-8 holds every pixel exactly.
    pixels = points["conv.input"]
    assert (pixels.bits, pixels.signed, pixels.exponent, pixels.elements_per_sample) == (8, False, -8, 256)
