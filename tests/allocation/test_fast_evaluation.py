"""The search's fast evaluation (native kernels, cached prefixes, shared state) scores every candidate exactly
as the torch integer model does."""

import pytest
import torch
from tiny_capsnet import tiny_capsnet, tiny_deepcaps, tiny_images

from capsnet_nncf_plugin.allocation import allocate, quantizable_layers
from capsnet_nncf_plugin.allocation import evaluator as evaluator_module
from capsnet_nncf_plugin.allocation.evaluator import AccuracyEvaluator, clear_shared_state
from capsnet_nncf_plugin.allocation.native_kernels import (
    native_kernels,
    native_kernels_available,
    native_routing,
    native_squash,
)
from capsnet_nncf_plugin.allocation.prefix_cache import PrefixCache, PrefixRunner, node_keys
from capsnet_nncf_plugin.core import BitAllocation, RoutingBits
from capsnet_nncf_plugin.data.image_dataset import ImageDataset
from capsnet_nncf_plugin.fx import SharedCalibration
from capsnet_nncf_plugin.measurement_store import MeasurementStore
from capsnet_nncf_plugin.ops import RoutingQuantization, int_dynamic_routing, int_squash


@pytest.fixture(autouse=True)
def _fresh_state():
    clear_shared_state()
    yield
    clear_shared_state()


def dataset_of(model, count=300, seed=5):
    """Images with labels mostly FP32's, so that candidates lose images now and then."""
    images = tiny_images(count, seed=seed)
    with torch.no_grad():
        labels = model(images).argmax(dim=1)
    labels[::7] = (labels[::7] + 1) % 3
    return ImageDataset(images.to(torch.uint8), labels, name="tiny", split="val", num_classes=3)


def candidates(names):
    """What a search asks: uniform widths, one layer lowered, the routing of the last layer alone."""
    first, last = names[0], names[-1]
    uniform = BitAllocation.uniform(names)
    return [
        uniform,
        uniform.with_layer(last, weight=3),
        uniform.with_layer(last, weight=3, routing=RoutingBits.from_dict(4)),
        uniform.with_layer(last, weight=2, routing=RoutingBits.from_dict(3)),
        uniform.with_layer(first, activation=3),
        BitAllocation.uniform(names, weight=3, activation=4, routing=4),
        uniform.with_layer(last, activation=12),
        BitAllocation.uniform(names, activation=16),
        uniform.with_layer(last, weight=3),  # again: a cached measurement
    ]


@pytest.mark.parametrize("build", [tiny_capsnet, tiny_deepcaps], ids=["shallowcaps", "deepcaps"])
def test_fast_evaluation_scores_every_candidate_as_the_torch_integer_model(build):
    model = build()
    calibration = [tiny_images(32, seed=2)]
    validation = dataset_of(model)
    names = [layer.name for layer in quantizable_layers(model)]
    # Batches of 20: a cut is stored per batch, and candidates stop early after a few.
    fast = AccuracyEvaluator(model, calibration, validation, batch_size=20, fast=True, share=False)
    plain = AccuracyEvaluator(model, calibration, validation, batch_size=20, fast=False, share=False)
    for allocation in candidates(names):
        for tolerance in (0.5, 3.0, None):
            if tolerance is None:
                assert fast.measure(allocation) == plain.measure(allocation)
            else:
                assert fast.holds(allocation, tolerance) == plain.holds(allocation, tolerance)
                assert fast.cache[fast._key(allocation)] == plain.cache[plain._key(allocation)]
    assert fast.evaluations == plain.evaluations == len(candidates(names)) - 1
    assert fast.images_evaluated == plain.images_evaluated
    # Candidates changing the class capsules alone started every batch at their input.
    assert fast.images_from_prefix >= 3 * len(validation)


@pytest.mark.parametrize("build", [tiny_capsnet, tiny_deepcaps], ids=["shallowcaps", "deepcaps"])
def test_prefix_runner_outputs_equal_the_forward_pass(build):
    model = build()
    names = [layer.name for layer in quantizable_layers(model)]
    shared = SharedCalibration(model, [tiny_images(32, seed=2)])
    cache = PrefixCache(2**30)
    images = [tiny_images(10, seed=seed) for seed in (11, 12)]
    every_cut = None
    for allocation in candidates(names):
        quantized = shared.quantize(allocation)
        runner = PrefixRunner(quantized, cache)
        every_cut = every_cut or list(runner.plans)
        with torch.no_grad(), native_kernels():
            for batch, batch_images in enumerate(images):
                assert torch.equal(runner.run(batch, batch_images, every_cut), quantized(batch_images))
    assert cache.hits > 0


def test_node_keys_change_from_the_changed_layer_on():
    model = tiny_deepcaps()
    names = [layer.name for layer in quantizable_layers(model)]
    shared = SharedCalibration(model, [tiny_images(32, seed=2)])
    before = shared.quantize(BitAllocation.uniform(names))
    after = shared.quantize(BitAllocation.uniform(names).with_layer("cell.main2", weight=4))
    keys_before, keys_after = node_keys(before), node_keys(after)
    order = [node.name for node in before.graph.nodes]
    same = [name for name in order if keys_before[_node(before, name)] == keys_after[_node(after, name)]]
    changed = order.index("cell_main2")
    assert same[: order.index("cell_main2")] == order[:changed]  # every node before it: same key
    assert "cell_main2" not in same and "cell_skip" in same  # the parallel branch did not change
    computed = [node.name for node in before.graph.nodes if node.op != "get_attr"]  # constants stay
    assert all(name not in same for name in computed[computed.index("add") :])  # from the sum on: changed


def _node(model, name):
    return next(node for node in model.graph.nodes if node.name == name)


@pytest.mark.parametrize("method", ["progressive-descent", "block-routing"])
def test_a_fast_search_decides_as_a_plain_one(method):
    model = tiny_capsnet()
    calibration = [tiny_images(32, seed=2)]
    validation = dataset_of(model, count=200)
    results = []
    for fast in (True, False):
        clear_shared_state()
        allocation = allocate(model, calibration, validation, method=method, tolerance=2.0, fast=fast)
        results.append((allocation.to_dict()["layers"], allocation.info["evaluations"]))
    assert results[0] == results[1]


def test_a_second_evaluator_of_the_same_inputs_shares_predictions_and_measurements(monkeypatch):
    model = tiny_capsnet()
    calibration = [tiny_images(32, seed=2)]
    validation = dataset_of(model, count=100)
    names = [layer.name for layer in quantizable_layers(model)]
    first = AccuracyEvaluator(model, calibration, validation)
    measured = first.measure(BitAllocation.uniform(names))
    fp32_passes = []
    fp32_pass = evaluator_module.fp32_pass
    monkeypatch.setattr(
        evaluator_module, "fp32_pass", lambda *a, **k: fp32_passes.append(1) or fp32_pass(*a, **k)
    )
    second = AccuracyEvaluator(model, calibration, validation)
    assert fp32_passes == [] and second.state is first.state
    assert second.measure(BitAllocation.uniform(names)) == measured
    assert second.evaluations == 1 and second.images_evaluated == 0  # counted for its search, not run again
    third = AccuracyEvaluator(model, calibration, dataset_of(model, count=100, seed=6))  # other images
    assert fp32_passes == [1] and third.state is not first.state


def test_fp32_on_the_validation_images_is_read_back_from_the_store(tmp_path):
    model = tiny_capsnet()
    calibration = [tiny_images(32, seed=2)]
    validation = dataset_of(model, count=100)
    store = MeasurementStore(tmp_path)
    first = AccuracyEvaluator(model, calibration, validation, share=False, store=store)
    calls = []
    model.register_forward_hook(lambda *arguments: calls.append(1))
    second = AccuracyEvaluator(model, calibration, validation, share=False, store=store)
    assert calls == []  # not one FP32 forward: read back
    for name in ("fp32_predictions", "labels", "order", "images"):
        assert torch.equal(getattr(second.state, name), getattr(first.state, name)), name
    names = [layer.name for layer in quantizable_layers(model)]
    assert second.measure(BitAllocation.uniform(names)) == first.measure(BitAllocation.uniform(names))
    with torch.no_grad():
        next(model.parameters()).mul_(1.5)  # other weights: measured again
    AccuracyEvaluator(model, calibration, validation, share=False, store=store)
    assert calls and len(list((tmp_path / "fp32-validation").glob("*.pt"))) == 2


@pytest.mark.skipif(not native_kernels_available(), reason="the native custom-op library is not built")
def test_native_kernels_compute_the_reference_integers():
    generator = torch.Generator().manual_seed(3)
    capsules = torch.randint(-(2**15), 2**15, (50, 7, 16, 3, 3), generator=generator, dtype=torch.int16)
    for exponent, bits in ((-12, 16), (0, 8), (3, 5)):
        assert torch.equal(
            native_squash(capsules, exponent, bits, 2), int_squash(capsules, exponent, bits, 2)
        )
    votes = torch.randint(-128, 128, (20, 30, 4, 8), generator=generator, dtype=torch.int8)
    params = RoutingQuantization(
        iterations=3,
        votes_exponent=-6,
        votes_bits=8,
        coupling_bits=(8, 6, 7),
        pre_exponents=(-4, -3, -4),
        pre_bits=(10, 8, 12),
        out_bits=(8, 6, 16),
        logit_exponents=(-5, -4),
        logit_bits=(9, 10),
    )
    assert torch.equal(native_routing(votes, params), int_dynamic_routing(votes, params))
