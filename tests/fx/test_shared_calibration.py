"""One calibration, many allocations: SharedCalibration builds quantize_fx's integer model bit for bit."""

import warnings

import pytest
import torch
from tiny_capsnet import tiny_capsnet, tiny_deepcaps, tiny_images

from capsnet_nncf_plugin.allocation import quantizable_layers
from capsnet_nncf_plugin.core import BitAllocation, RoutingBits
from capsnet_nncf_plugin.fx import (
    SharedCalibration,
    quantization_points,
    quantize_fx,
    shared_calibration,
)
from capsnet_nncf_plugin.fx.qconfig import get_capsnet_qconfig_mapping
from capsnet_nncf_plugin.fx.workflow import prepare_capsnet_fx


def allocations(model):
    names = [layer.name for layer in quantizable_layers(model)]
    first, last = names[0], names[-1]
    # The last iteration's s at 4 bits, the rest of routing at 6: per-iteration widths reach the observers.
    routing = RoutingBits.from_dict(6).with_entry("pre_activation", 2, 4, 3)
    return [
        BitAllocation.uniform(names),
        BitAllocation.uniform(names, weight=4, activation=5, routing=5),
        BitAllocation.uniform(names).with_layer(first, weight=3, activation=4),
        BitAllocation.uniform(names).with_layer(last, weight=5, routing=routing),
        BitAllocation.uniform(names, weight=12, activation=10, routing=12),  # qint32 containers
        # A 16-bit last layer after 8-bit ones: torch.ao observes the model output separately.
        BitAllocation.uniform(names).with_layer(last, activation=16),
        BitAllocation.uniform(names, activation=6).with_layer(last, activation=16),
    ]


@pytest.mark.parametrize("share_modules", [False, True], ids=["own-modules", "shared-modules"])
@pytest.mark.parametrize(
    ("build", "clip", "observer_sets"),
    # ShallowCaps' class capsules at 16 bits after 8-bit layers get an observer of their own on the model
    # output; DeepCaps' output is observed either way.
    [(tiny_capsnet, "hardware", 2), (tiny_deepcaps, "hardware", 1), (tiny_capsnet, "percentile", 2)],
    ids=["shallowcaps", "deepcaps", "shallowcaps-percentile"],  # percentile: sampled values shared too
)
def test_every_allocation_quantizes_as_quantize_fx_does(
    build, clip, observer_sets, share_modules, monkeypatch
):
    model = build()
    images = tiny_images(32, seed=2)
    batches, probe = [images[:16], images[16:]], tiny_images(8, seed=9)
    passes = []
    calibrate = shared_calibration.calibrate
    monkeypatch.setattr(
        shared_calibration,
        "calibrate",
        lambda *a, **k: (k.get("restore") is None and passes.append(1)) or calibrate(*a, **k),
    )
    shared = SharedCalibration(model, batches, clip=clip, share_modules=share_modules)
    # Twice over: the second round's models are built from reused modules alone, when they are shared.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        for allocation in allocations(model) * 2:
            expected = quantize_fx(model, batches, clip=clip, allocation=allocation)
            actual = shared.quantize(allocation)
            assert torch.equal(actual(probe), expected(probe))
            assert quantization_points(actual) == quantization_points(expected)
    assert len(passes) == shared.calibrations == observer_sets  # one per set of observers
    if share_modules:
        assert shared.module_reuse.reused > shared.module_reuse.built > 0


def test_statistics_refuse_a_model_with_other_observers():
    images = tiny_images(16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shared = SharedCalibration(tiny_capsnet(), [images])
        shared.quantize()
        mapping = get_capsnet_qconfig_mapping(8, 8, 8, "hardware", None)
        other = prepare_capsnet_fx(tiny_deepcaps(), mapping, images)
    (statistics,) = shared._statistics.values()
    with pytest.raises(ValueError, match="other observers than the calibrated one"):
        statistics.restore(other)


def test_an_empty_calibration_is_refused():
    with pytest.raises(ValueError, match="at least one calibration batch"):
        SharedCalibration(tiny_capsnet(), [])
