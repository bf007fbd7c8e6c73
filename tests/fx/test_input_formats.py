"""A layer's activation bits set its output; the model input keeps 8 bits; layers read producers' formats."""

import warnings

import pytest
import torch
from tiny_capsnet import tiny_capsnet, tiny_images

from capsnet_nncf_plugin.allocation.layers import quantizable_layers
from capsnet_nncf_plugin.core import BitAllocation
from capsnet_nncf_plugin.fx import quantization_points, quantize_fx
from capsnet_nncf_plugin.models import create
from capsnet_nncf_plugin.observers import CalibrationError, PowerOfTwoObserver
from capsnet_nncf_plugin.quantized import QuantizedModule


def quantize(**options):
    images = tiny_images(32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_fx(tiny_capsnet(), [images[:16], images[16:]], **options)


def model_input(tensor):
    return tensor.dequantize() if tensor.is_quantized else tensor


def bits_of(model):
    return {p.name: p.bits for p in quantization_points(model) if p.kind == "activation"}


def test_model_input_keeps_its_own_bits():
    assert bits_of(quantize(activation_bits=4)) == {
        "conv.input": 8,
        "conv.output": 4,
        "primary.pre_squash": 4,
        "primary.output": 4,
        "classes.votes": 4,
    }
    assert bits_of(quantize(activation_bits=4, input_bits=6))["conv.input"] == 6


def test_lowering_one_layer_leaves_what_it_reads_alone():
    names = ["conv", "primary", "classes"]
    allocation = BitAllocation.uniform(names).with_layer("primary", activation=3)
    lowered, uniform = quantize(allocation=allocation), quantize()
    layers = {name: m for name, m in lowered.named_modules() if isinstance(m, QuantizedModule)}
    assert layers["primary"].input_bits == 8  # reads conv's 8-bit output as it is
    assert layers["classes"].input_bits == 3  # reads primary's 3-bit output
    # primary reads conv's 8-bit output without re-rounding it to its own 3 bits.
    seen = {}
    lowered.primary.register_forward_pre_hook(lambda _m, args: seen.setdefault("input", args[0]))
    with torch.no_grad():
        lowered(tiny_images(8, seed=4))
    read = layers["primary"]._input(seen["input"])
    assert torch.equal(model_input(read), model_input(seen["input"]))
    assert len(torch.unique(model_input(read))) > 2**3
    assert bits_of(lowered)["conv.output"] == bits_of(uniform)["conv.output"] == 8


def test_a_layer_reads_its_producers_format_through_element_moves():
    # DeepCaps' first cell reads ``stem_bn(...).unsqueeze(1)``; prepare_fx observes the unsqueeze with the
    # cell's own qconfig, but convert_fx passes the stem's quantized tensor through unchanged.
    model = create("deepcaps", in_channels=1, image_size=28, num_classes=10).eval()
    names = [layer.name for layer in quantizable_layers(model)]
    allocation = BitAllocation.uniform(names).with_layer("cell1.entry", activation=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = quantize_fx(model, [torch.rand(4, 1, 28, 28) * 255], allocation=allocation)
    assert quantized.cell1.entry.input_bits == 8
    assert quantized.cell1.main1.input_bits == quantized.cell1.skip.input_bits == 5


def test_bits_change_only_before_calibration():
    observer = PowerOfTwoObserver(bits=8)
    observer.set_bits(5)
    assert (observer.bits, observer.quant_max) == (5, 31)
    observer(torch.tensor([0.0, 1.0]))
    with pytest.raises(CalibrationError, match="set its bits before calibration"):
        observer.set_bits(4)
