"""The NNCF adapter end to end on a miniature CapsNet: NNCF's ranges, PoT scales, the integer model."""

import json
import math
import warnings

import nncf
import numpy as np
import pytest
import torch
from nncf.torch.function_hook import get_hook_storage
from tiny_capsnet import tiny_capsnet, tiny_images

from capsnet_nncf_plugin.allocation.layers import quantizable_layers
from capsnet_nncf_plugin.core import BitAllocation
from capsnet_nncf_plugin.export import export_onnx
from capsnet_nncf_plugin.fx import quantization_points, quantize_fx
from capsnet_nncf_plugin.models import create
from capsnet_nncf_plugin.nncf import (
    CAPSULE_METATYPES,
    ConfigError,
    PowerOfTwoSymmetricQuantizer,
    quantize,
    quantize_with_report,
    register_capsule_metatypes,
)
from capsnet_nncf_plugin.runtime import InferenceSession


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def calibration():
    images = tiny_images(32)
    return [images[:16], images[16:]]


def nncf_quantizers(model):
    return {
        name: module
        for name, module in get_hook_storage(model).named_modules()
        if isinstance(module, PowerOfTwoSymmetricQuantizer)
    }


@pytest.fixture(scope="module")
def report():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_with_report(tiny_capsnet(), calibration(), {"subset_size": 32})


def test_registration_is_idempotent_and_capsule_ops_are_single_nodes(report):
    register_capsule_metatypes()
    register_capsule_metatypes()
    names = set(nncf_quantizers(report.nncf_model))
    # The vote transform's weight (port 1) is quantized, squash and routing inputs are, nothing inside them.
    assert "pre_hooks.classes/votes/vote_transform/0__1.0" in names
    assert "post_hooks.primary/conv/conv2d/0__0.0" in names  # the pre-squash capsules
    assert "post_hooks.classes/votes/vote_transform/0__0.0" in names  # the votes routing reads
    assert not [n for n in names if "softmax" in n or "routing/" in n or "length/" in n]
    assert {m.__name__ for m in CAPSULE_METATYPES} <= set(
        nncf.torch.graph.operator_metatypes.PT_OPERATOR_METATYPES.registry_dict
    )


def test_every_nncf_scale_is_a_power_of_two_and_every_quantizer_reaches_the_integer_model(report):
    quantizers = nncf_quantizers(report.nncf_model)
    assert len(quantizers) == 8 and not report.unmatched
    for quantizer in quantizers.values():
        steps = (quantizer.scale / quantizer.level_high).flatten().tolist()
        assert all(math.log2(step).is_integer() for step in steps)
    points = {p.name: p for p in quantization_points(report.model)}
    expected = {
        "activation_post_process_0": "conv.input",
        "activation_post_process_1": "conv.output",
        "primary.pre_observer": "primary.pre_squash",
        "activation_post_process_2": "primary.output",
        "classes.votes_observer": "classes.votes",
    }
    assert set(report.transferred) == set(expected)
    for observer, point in expected.items():
        quantizer = quantizers[report.transferred[observer]]
        assert points[point].exponent == int(quantizer.exponents()[0]), point
    for hook, point in (
        ("pre_hooks.conv/conv2d/0__1.0", "conv.weight"),
        ("pre_hooks.primary/conv/conv2d/0__1.0", "primary.conv.weight"),
        ("pre_hooks.classes/votes/vote_transform/0__1.0", "classes.votes.weight"),
    ):
        assert tuple(quantizers[hook].exponents().tolist()) == points[point].exponent


#: NNCF's quantile range estimator dropping the top and bottom 10 % of each activation as outliers: ranges
#: narrower than the min/max the plugin's own observers calibrate.
QUANTILE_RANGES = {
    bound: {"statistics_type": "quantile", "aggregator_type": "mean", "quantile_outlier_prob": 0.1}
    for bound in ("min", "max")
}


def test_nncf_ranges_that_differ_from_the_plugins_own_reach_the_integer_model():
    # With min/max statistics NNCF's ranges equal the plugin's, so the test above would pass without any
    # range transfer; here they differ, and the integer model must carry NNCF's.
    config = {
        "subset_size": 2,
        "advanced_parameters": {"activations_range_estimator_params": QUANTILE_RANGES},
    }
    result = quantize_with_report(tiny_capsnet(), calibration(), config)
    # The FX flow on the same items with the NNCF flow's clip rule for the plugin's observers (capsnet.clip).
    fx_exponents = {
        p.name: p.exponent
        for p in quantization_points(quantize_fx(tiny_capsnet(), calibration(), clip="minmax"))
    }
    quantizers = nncf_quantizers(result.nncf_model)
    points = {p.name: p for p in quantization_points(result.model)}
    differing = []
    for observer, point in (
        ("activation_post_process_1", "conv.output"),
        ("primary.pre_observer", "primary.pre_squash"),
        ("activation_post_process_2", "primary.output"),
        ("classes.votes_observer", "classes.votes"),
    ):
        nncf_exponent = int(quantizers[result.transferred[observer]].exponents()[0])
        assert points[point].exponent == nncf_exponent, point
        if nncf_exponent != fx_exponents[point]:
            differing.append(point)
    # Quantiles cut the largest activations, so NNCF's steps are finer than min/max ones, at every point.
    assert differing == ["conv.output", "primary.pre_squash", "primary.output", "classes.votes"]
    for point in differing:
        assert points[point].exponent < fx_exponents[point], point


def test_allocation_bits_reach_both_models_and_memory_equals_the_fx_flow(tmp_path):
    names = [layer.name for layer in quantizable_layers(tiny_capsnet())]
    allocation = BitAllocation.uniform(names, weight=6, activation=7, routing=6).with_layer("conv", weight=4)
    path = allocation.save(tmp_path / "allocation.json")
    config = {"subset_size": 32, "capsnet": {"allocation": str(path)}}

    def outlier_capsnet():  # one weight 3x its channel's largest: minmax and mse ranges differ at 4 bits
        model = tiny_capsnet()
        with torch.no_grad():
            model.conv.weight[0, 0, 0, 0] = 3 * model.conv.weight[0].abs().max()
        return model

    result = quantize_with_report(outlier_capsnet(), calibration(), config)
    fx_model = quantize_fx(outlier_capsnet(), calibration(), allocation=allocation)
    memory = [(p.name, p.kind, p.bits, p.elements_per_sample) for p in quantization_points(result.model)]
    assert memory == [(p.name, p.kind, p.bits, p.elements_per_sample) for p in quantization_points(fx_model)]
    quantizers = nncf_quantizers(result.nncf_model)
    bits = {name: q.num_bits for name, q in quantizers.items()}
    assert bits["pre_hooks.conv/conv2d/0__1.0"] == 4
    assert bits["pre_hooks.primary/conv/conv2d/0__1.0"] == 6
    assert bits["post_hooks.primary/conv/conv2d/0__0.0"] == 7
    # Below NNCF's 8-bit calibration width the plugin's width-aware rules decide the ranges, as in the FX
    # flow (weights: mse; NNCF changed biases only, so the weight exponents are the FX flow's), and NNCF's
    # quantizers take the same formats: both models quantize every tensor alike.
    points = {p.name: p for p in quantization_points(result.model)}
    fx_points = {p.name: p for p in quantization_points(fx_model)}
    for hook, point in (
        ("pre_hooks.conv/conv2d/0__1.0", "conv.weight"),
        ("pre_hooks.primary/conv/conv2d/0__1.0", "primary.conv.weight"),
    ):
        assert tuple(quantizers[hook].exponents().tolist()) == points[point].exponent
        assert points[point].exponent == fx_points[point].exponent
    for observer, point in (
        ("activation_post_process_1", "conv.output"),
        ("primary.pre_observer", "primary.pre_squash"),
    ):
        assert int(quantizers[result.transferred[observer]].exponents()[0]) == points[point].exponent


def test_nncf_result_exports_and_runs_in_onnxruntime_bit_for_bit(report, tmp_path):
    images = tiny_images(24, seed=5)
    exported = export_onnx(report.model, (images[:2],), tmp_path / "nncf.onnx")
    session = InferenceSession(str(exported.path))
    scores = session.run(None, {session.get_inputs()[0].name: images.numpy()})[0]
    expected = report.model(images)
    expected = expected.dequantize() if expected.is_quantized else expected
    np.testing.assert_array_equal(scores, expected.numpy())


def test_legacy_layout_from_a_file(tmp_path):
    path = tmp_path / "nncf2.json"
    path.write_text(
        json.dumps(
            {
                "input_info": {"sample_size": [1, 1, 16, 16]},
                "compression": [
                    {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 32}}},
                    {"algorithm": "capsnet_progressive_bitwidth", "routing_bits": 6},
                ],
            }
        )
    )
    model = quantize(tiny_capsnet(), nncf.Dataset(calibration()), path)
    routing = [p for p in quantization_points(model) if p.kind == "routing"]
    assert routing and all(p.bits == 6 for p in routing)


@pytest.mark.parametrize("name", ["shallowcaps", "deepcaps"])
def test_zoo_architectures_go_through_nncf_with_every_quantizer_used(name):
    torch.manual_seed(0)
    images = torch.randint(0, 256, (4, 1, 28, 28)).float()
    result = quantize_with_report(create(name).eval(), [images[:2], images[2:]], {"subset_size": 2})
    assert not result.unmatched and len(result.transferred) >= 4
    scores = result.model(images)
    assert scores.shape == (4, 10) and torch.isfinite(scores.dequantize()).all()


def test_bad_calibration_data_and_missing_validation_data():
    with pytest.raises(ConfigError, match="transform_fn"):
        quantize(tiny_capsnet(), nncf.Dataset([(tiny_images(4), torch.zeros(4))]))
    with pytest.raises(ConfigError, match="pass validation_dataset="):
        quantize(tiny_capsnet(), calibration(), {"capsnet": {"method": "progressive-descent"}})
