"""GPTQ in the FX flow: same grids as round-to-nearest, other codes, less error; shared = quantize_fx."""

import warnings

import pytest
import torch
from tiny_capsnet import tiny_capsnet, tiny_deepcaps, tiny_images

from capsnet_nncf_plugin.allocation import quantizable_layers
from capsnet_nncf_plugin.core import BitAllocation, QuantizationSettings
from capsnet_nncf_plugin.fx import SharedCalibration, quantization_points, quantize_fx
from capsnet_nncf_plugin.quantized.weights import QuantizedWeights


def _weights(quantized):
    return {
        name: module for name, module in quantized.named_modules() if isinstance(module, QuantizedWeights)
    }


def _output_error(quantized, model, images):
    with torch.no_grad():
        return float(((quantized(images) - model(images)) ** 2).mean())


def test_gptq_keeps_the_grids_changes_codes_and_lowers_the_output_error(tiny_model, images):
    batches = [images[:8], images[8:]]
    nearest = quantize_fx(tiny_model, batches, weight_bits=3)
    gptq = quantize_fx(tiny_model, batches, weight_bits=3, weight_rounding="gptq")
    nearest_weights, gptq_weights = _weights(nearest), _weights(gptq)
    assert nearest_weights.keys() == gptq_weights.keys()
    changed = 0
    for name, weights in gptq_weights.items():
        assert weights.quantizer == nearest_weights[name].quantizer  # same bits, same exponents
        changed += int((weights.codes != nearest_weights[name].codes).sum())
    assert changed > 0
    assert quantization_points(gptq) == quantization_points(nearest)
    assert _output_error(gptq, tiny_model, images) < _output_error(nearest, tiny_model, images)


def test_an_allocation_records_its_rounding_and_quantize_fx_repeats_it(tiny_model, images):
    names = [layer.name for layer in quantizable_layers(tiny_model)]
    allocation = BitAllocation.uniform(names, weight=3).with_settings(
        QuantizationSettings(weight_rounding="gptq")
    )
    batches = [images[:8], images[8:]]
    recorded = quantize_fx(tiny_model, batches, allocation=allocation)
    explicit = quantize_fx(tiny_model, batches, allocation=allocation, weight_rounding="gptq")
    nearest = quantize_fx(tiny_model, batches, allocation=allocation, weight_rounding="nearest")
    with torch.no_grad():
        assert torch.equal(recorded(images), explicit(images))
        assert not torch.equal(recorded(images), nearest(images))


@pytest.mark.parametrize("build", [tiny_capsnet, tiny_deepcaps], ids=["shallowcaps", "deepcaps"])
def test_shared_calibration_rounds_with_gptq_as_quantize_fx_does(build):
    model = build()
    images = tiny_images(32, seed=2)
    batches, probe = [images[:16], images[16:]], tiny_images(8, seed=9)
    names = [layer.name for layer in quantizable_layers(model)]
    shared = SharedCalibration(model, batches, weight_rounding="gptq")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        for allocation in [
            BitAllocation.uniform(names, weight=3),
            BitAllocation.uniform(names, weight=5).with_layer(names[0], weight=2),
            BitAllocation.uniform(names, weight=3),  # codes from the memo
        ]:
            expected = quantize_fx(model, batches, allocation=allocation, weight_rounding="gptq")
            assert torch.equal(shared.quantize(allocation)(probe), expected(probe))


def test_gptq_with_bias_correction_is_refused_with_the_choice_to_make(tiny_model, images):
    with pytest.raises(ValueError, match="GPTQ and bias correction do not combine"):
        quantize_fx(tiny_model, [images], weight_rounding="gptq", bias_correction=True)
    with pytest.raises(ValueError, match="weight rounding must be one of nearest, gptq"):
        quantize_fx(tiny_model, [images], weight_rounding="stochastic")
