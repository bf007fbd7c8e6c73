"""Error analysis, the allocation methods and BitAllocation on a tiny CapsNet whose labels are its own FP32
predictions (FP32 accuracy 100 %), with a tolerance loose enough that every method can lower bits."""

import dataclasses
import itertools
import json
import math
import warnings

import pytest
import torch
from tiny_capsnet import tiny_capsnet, tiny_images

from capsnet_nncf_plugin.allocation import (
    BitAllocation,
    allocate,
    analyze_errors,
    available_methods,
    get_method,
    quantizable_layers,
)
from capsnet_nncf_plugin.allocation.evaluator import AccuracyEvaluator
from capsnet_nncf_plugin.allocation.memory import memory_report
from capsnet_nncf_plugin.allocation.methods.context import SearchContext, smallest_holding
from capsnet_nncf_plugin.allocation.methods.error_guided import (
    FIRST_ROUTING_THRESHOLD_DB,
    STEP_DB,
    THRESHOLDS_DB,
    at_threshold,
    routing_at_threshold,
)
from capsnet_nncf_plugin.allocation.methods.rate_distortion import descent_path
from capsnet_nncf_plugin.allocation.sensitivity import ErrorAnalysis
from capsnet_nncf_plugin.core import LayerBits, RoutingBits
from capsnet_nncf_plugin.core.bit_widths import ROUTING_TENSORS
from capsnet_nncf_plugin.core.clipping import DEFAULT_CLIP
from capsnet_nncf_plugin.data.image_dataset import ImageDataset
from capsnet_nncf_plugin.fx import quantization_points, quantize_fx

TOLERANCE = 15.0


@pytest.fixture(scope="module")
def setting():
    model = tiny_capsnet()
    images = tiny_images(100, seed=3)
    with torch.no_grad():
        labels = model(images).argmax(dim=1)
    validation = ImageDataset(images.to(torch.uint8), labels, name="synthetic", split="val", num_classes=3)
    calibration = [tiny_images(32, seed=4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = analyze_errors(model, calibration)
    return model, calibration, validation, analysis


def test_layers_and_error_analysis(setting):
    model, _, _, analysis = setting
    layers = quantizable_layers(model)
    assert [layer.name for layer in layers] == ["conv", "primary", "classes"]
    assert [layer.fused_relu for layer in layers] == [True, False, False]
    assert [layer.routing for layer in layers] == [False, False, True]
    assert set(analysis.errors["classes"]) == {"weight", "activation", "routing"}
    for name, kinds in analysis.errors.items():
        for kind, by_bits in kinds.items():
            sqnr = [by_bits[bits]["sqnr_db"] for bits in sorted(by_bits)]
            # More bits, less error: about 6 dB per bit; never worse by more than noise.
            assert all(b >= a - 1.0 for a, b in itertools.pairwise(sqnr)), (name, kind, sqnr)
            assert sqnr[-1] > sqnr[0] + 10, (name, kind, sqnr)
    activation = analysis.errors["conv"]["activation"]
    assert activation[8]["sqnr_db"] - activation[7]["sqnr_db"] == pytest.approx(6.0, abs=1.5)
    assert analysis.ranking("weight", 4)[0] in {"conv", "primary", "classes"}
    assert analysis.smallest_bits("conv", "activation", 1000.0) == 8
    assert math.isfinite(analysis.sqnr("conv", "weight", 2))


def test_a_lazy_analysis_offers_the_widths_between_8_bits_and_a_wide_default(setting):
    model, calibration, _, full = setting
    lazy = analyze_errors(model, calibration, lazy=True)
    sqnr = {bits: lazy.sqnr("conv", "activation", bits) for bits in (8, 9, 10)}
    assert sqnr[8] + 3 < sqnr[9] < sqnr[10] - 3, sqnr  # about 6 dB a bit beyond 8 too
    between = (sqnr[9] + sqnr[10]) / 2
    # A layer that 8 bits leave short of the threshold gets 10 bits, not the whole 12 of a wide start.
    assert lazy.smallest_bits("conv", "activation", between, default=12) == 10
    assert lazy.smallest_bits("conv", "activation", 1000.0, default=12) == 12
    # One read back from its entries alone (no model to measure) offers its candidates (2..8) only.
    finished = dataclasses.replace(full, measure=None)
    assert finished.smallest_bits("conv", "activation", between, default=12) == 12


def test_a_lazy_analysis_measures_what_is_asked_and_agrees_with_the_full_one(setting):
    model, calibration, _, full = setting
    lazy = analyze_errors(model, calibration, lazy=True)
    assert lazy.errors == {} and lazy.kinds_of("classes") == ["weight", "activation", "routing"]
    assert lazy.ranking("weight", 4) == full.ranking("weight", 4)
    assert {name: list(kinds) for name, kinds in lazy.errors.items()} == {
        "conv": ["weight"],
        "primary": ["weight"],
        "classes": ["weight"],
    }
    assert lazy.errors["classes"]["weight"] == {4: full.errors["classes"]["weight"][4]}
    assert lazy.complete().errors == full.errors


@pytest.mark.parametrize(
    "method",
    [
        "progressive-descent",
        "error-guided",
        "block-routing",
        "rate-distortion",
        "qcapsnets",
        "qcapsnets-clipped",
    ],
)
def test_every_method_lowers_bits_within_tolerance(setting, method):
    model, calibration, validation, analysis = setting
    allocation = allocate(
        model, calibration, validation, method=method, tolerance=TOLERANCE, analysis=analysis
    )
    info = allocation.info
    assert (
        info["meets_tolerance"]
        and info["validation_accuracy"] >= info["fp32_validation_accuracy"] - TOLERANCE
    )
    assert info["evaluations"] >= 1 and info["search_seconds"] > 0
    assert info["weight_reduction"] > 4.2  # below 8 bits somewhere
    assert all(2 <= bits.weight <= 8 and 2 <= bits.activation <= 8 for bits in allocation.layers.values())
    # The recorded memory is the memory of the model the allocation quantizes to.
    quantized = quantize_fx(model, calibration, clip=allocation.settings.clip, allocation=allocation)
    points = {p.name: p.bits for p in quantization_points(quantized)}
    for name, bits in allocation.layers.items():
        weight_point = next(p for p in points if p.startswith(f"{name}.") and p.endswith("weight"))
        assert points[weight_point] == bits.weight
    if method == "block-routing":
        routing = allocation.layers["classes"].routing
        per_iteration = [v for v in vars(routing).values() if isinstance(v, tuple)]
        assert per_iteration and all(len(v) == 3 for v in per_iteration)  # bits per iteration


def test_uniform_baseline_and_registry(setting):
    model, calibration, validation, analysis = setting
    builtin = {
        "progressive-descent",
        "error-guided",
        "block-routing",
        "rate-distortion",
        "uniform-8",
        "qcapsnets",
        "qcapsnets-clipped",
    }
    assert builtin <= set(available_methods())
    allocation = allocate(model, calibration, validation, method="uniform-8", analysis=analysis)
    assert allocation.info["evaluations"] == 1
    assert {(b.weight, b.activation) for b in allocation.layers.values()} == {(8, 8)}
    with pytest.raises(ValueError, match="unknown allocation method 'nope'; available: block-routing"):
        allocate(model, calibration, validation, method="nope")
    with pytest.raises(ValueError, match="tolerance"):
        allocate(model, calibration, validation, tolerance=-1)


def test_one_dataset_for_calibration_and_search_is_searched_after_the_calibration_images(setting):
    model, _, validation, analysis = setting
    allocation = allocate(
        model, validation, validation, method="uniform-8", calibration_images=40, analysis=analysis
    )
    assert allocation.info["validation_images"] == len(validation) - 40
    with pytest.raises(ValueError, match="none is left for the search"):
        allocate(model, validation, validation, calibration_images=len(validation), analysis=analysis)


def test_bit_allocation_json_round_trip(tmp_path):
    allocation = BitAllocation(
        {
            "conv": LayerBits(4, 6),
            "classes": LayerBits(
                3, 8, RoutingBits(logits=(6, 5), coupling=7, pre_activation=8, output=(8, 7, 6))
            ),
        },
        method="error-guided",
        info={"tolerance": 0.1},
    )
    path = allocation.save(tmp_path / "a" / "allocation.json")
    loaded = BitAllocation.load(path)
    assert (
        loaded.key() == allocation.key()
        and loaded.method == "error-guided"
        and loaded.info == {"tolerance": 0.1}
    )
    assert json.loads(path.read_text())["layers"]["classes"]["routing"]["output"] == [8, 7, 6]
    (tmp_path / "bad.json").write_text('{"layers": 3}')
    with pytest.raises(ValueError, match="not a bit allocation"):
        BitAllocation.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="capsq quantize"):
        BitAllocation.load(tmp_path / "missing.json")


def test_smallest_holding_is_a_binary_search():
    calls = []

    def holds(bits):
        calls.append(bits)
        return bits >= 5

    assert smallest_holding(2, 8, holds) == 5
    assert len(calls) <= 3


def test_the_rate_distortion_path_lowers_the_cheapest_bit_first():
    # Same error curve (6 dB per bit), a hundredfold difference in size: the big layer gives up bits until
    # its next bit costs more noise per bit of memory than the small layer's (4x noise per bit: 3 bits).
    curve = {"weight": {bits: {"sqnr_db": 6.0 * bits, "mse": 0.0} for bits in range(2, 9)}}
    analysis = ErrorAnalysis(layers=[], errors={"big": curve, "small": curve, "empty": curve})
    costs = {"big": 1000, "small": 10, "empty": 0}
    path = descent_path(analysis, "weight", costs)
    assert path[0] == {"big": 8, "small": 8} and path[-1] == {"big": 2, "small": 2}  # cost 0: never lowered
    assert len(path) == 1 + 2 * 6
    memory = [sum(costs[name] * bits for name, bits in step.items()) for step in path]
    assert all(after < before for before, after in itertools.pairwise(memory))
    assert [step["big"] for step in path[:5]] == [8, 7, 6, 5, 4]
    assert path[4]["small"] == 8


def search_context(setting, evaluator_type=AccuracyEvaluator, **options) -> SearchContext:
    """A search over ``setting``'s model, measured by ``evaluator_type``, at ``TOLERANCE`` unless told."""
    model, calibration, validation, analysis = setting
    options.setdefault("tolerance", TOLERANCE)
    evaluator = evaluator_type(model, calibration, validation)
    return SearchContext(layers=quantizable_layers(model), analysis=analysis, evaluator=evaluator, **options)


def test_rate_distortion_prices_activations_by_the_elements_each_layer_quantizes(setting):
    model, calibration, _, _ = setting
    context = search_context(setting)
    elements = context.elements("activation")
    points = quantization_points(quantize_fx(model, calibration))
    activations = [p for p in points if p.kind == "activation"]
    assert set(elements) == set(context.names_with("activation"))
    assert all(count > 0 for count in elements.values())  # no layer is free to lower
    # Every activation point is counted once, by the layer it belongs to.
    assert sum(elements.values()) == sum(p.elements_per_sample for p in activations)
    assert context.weight_elements("conv") == model.conv.weight.numel() == context.elements("weight")["conv"]


class _NeedsWideActivations(AccuracyEvaluator):
    """Accuracy holds only while ``primary`` keeps activations of 10 bits or more, whatever the rest: a
    model whose activations lose too much at 8 bits somewhere."""

    def holds(self, allocation, tolerance):
        if self._key(allocation) not in self.cache:
            self.cache[self._key(allocation)] = None
            self.evaluations += 1
        return allocation.layers["primary"].activation >= 10


PROGRESSIVE_METHODS = ["error-guided", "progressive-descent", "block-routing", "rate-distortion"]


@pytest.mark.parametrize("method", PROGRESSIVE_METHODS)
def test_progressive_methods_widen_activations_where_8_bits_do_not_hold(setting, method):
    context = search_context(setting, _NeedsWideActivations, tolerance=0.1)
    evaluator = context.evaluator
    start = context.start()
    assert {name: bits.activation for name, bits in start.layers.items()} == dict.fromkeys(start.layers, 10)
    allocation = get_method(method)(context)
    assert evaluator.holds(allocation, 0.1)
    # The wide activation is spent where it is needed; weights still go as low as accuracy allows.
    assert all(allocation.layers[name].weight < 8 for name in context.names_with("weight"))
    if method != "error-guided":  # error-guided lowers by thresholds, not layer by layer
        assert allocation.layers["conv"].activation < 10


class _AlwaysHolds(AccuracyEvaluator):
    """Every allocation holds: the narrowest the analysis offers wins unless a budget stops it."""

    def holds(self, allocation, tolerance):
        self.evaluations += 1
        return True


def test_weight_bits_count_the_weights_memory_as_the_memory_report_does(setting):
    model = setting[0]
    context = search_context(setting)
    allocation = context.uniform().with_layer("conv", weight=3).with_layer("classes", weight=5)
    points = quantization_points(context.evaluator.quantized_model(allocation))
    assert context.weight_bits(allocation) == memory_report(points, model).weight_bits


def test_error_guided_spends_a_weight_budget_and_no_more(setting):
    model = setting[0]

    def searched(budget):
        context = search_context(setting, _AlwaysHolds, weight_memory_budget=budget)
        return context, get_method("error-guided")(context)

    context, unbounded = searched(None)
    fp32_bits = sum(p.numel() for p in model.parameters()) * 32
    budget = fp32_bits / 6
    _, bounded = searched(budget)
    weights = {name: bits.weight for name, bits in bounded.layers.items()}
    assert context.weight_bits(unbounded) < context.weight_bits(bounded) <= budget
    # From the tightest threshold whose weights fit (the next one up does not) ...
    fitting = [
        threshold
        for threshold in THRESHOLDS_DB
        if context.weight_bits(at_threshold(context, context.uniform(), "weight", threshold, 8)) <= budget
    ]
    assert fitting and max(fitting) < THRESHOLDS_DB[-1]
    above = at_threshold(context, context.uniform(), "weight", max(fitting) + STEP_DB, 8)
    assert context.weight_bits(above) > budget
    tightest = at_threshold(context, context.uniform(), "weight", max(fitting), 8)
    # ... the rest of the budget is spent: every layer as wide or wider, and no layer can take one more bit.
    assert all(weights[name] >= bits.weight for name, bits in tightest.layers.items())
    assert context.weight_bits(bounded) > context.weight_bits(tightest)
    for name in context.names_with("weight"):
        if weights[name] < 8:
            wider = bounded.with_layer(name, weight=weights[name] + 1)
            assert context.weight_bits(wider) > budget, name
    # Activations are searched after it as before: the loosest threshold, since everything holds.
    assert all(bounded.layers[n].activation < 8 for n in context.names_with("activation"))


def test_error_guided_takes_a_bit_off_the_layers_holding_most_memory(setting):
    context = search_context(setting, _AlwaysHolds)
    allocation = get_method("error-guided")(context)
    for kind in ("weight", "activation"):
        elements = context.elements(kind)
        largest = max(elements, key=elements.get)
        assert elements[largest] > sum(elements.values()) / 2  # tiny_capsnet: one layer holds most of each
        # Everything holds, so the first (loosest) threshold wins, then the largest layer gives up a bit.
        loosest = at_threshold(context, context.uniform(), kind, THRESHOLDS_DB[0], 8)
        expected = {name: getattr(loosest.layers[name], kind) for name in elements}
        expected[largest] = max(expected[largest] - 1, 2)
        assert {name: getattr(allocation.layers[name], kind) for name in elements} == expected, kind


def test_error_guided_lowers_routing_per_tensor_and_iteration_with_the_noise_of_all_entries(setting):
    context = search_context(setting, _AlwaysHolds)
    allocation = get_method("error-guided")(context)
    analysis = context.analysis
    (layer,) = [layer.name for layer in context.layers if layer.routing]
    routing = allocation.layers[layer].routing
    counts = {tensor: analysis.iteration_count(layer, tensor) for tensor in ROUTING_TENSORS}
    # Everything holds: the loosest routing threshold wins, each entry at its own width.
    margin = 10 * math.log10(sum(counts.values()))
    for tensor, count in counts.items():
        for index, bits in enumerate(routing.per_iteration(tensor, count)):
            need = FIRST_ROUTING_THRESHOLD_DB + margin
            assert bits == analysis.smallest_iteration_bits(layer, tensor, index, need, 8)
            assert bits == 8 or analysis.iteration_sqnr(layer, tensor, index, bits) >= need
    assert any(
        bits < 8
        for count_bits in (routing.per_iteration(t, c) for t, c in counts.items())
        for bits in count_bits
    )
    # A tighter threshold never lowers an entry further.
    tighter = routing_at_threshold(
        context.layers, analysis, context.uniform(), FIRST_ROUTING_THRESHOLD_DB + 2 * STEP_DB
    )
    for tensor, count in counts.items():
        pairs = zip(
            tighter.layers[layer].routing.per_iteration(tensor, count),
            routing.per_iteration(tensor, count),
            strict=True,
        )
        assert all(tight >= loose for tight, loose in pairs)


def test_error_guided_keeps_8_bit_routing_where_lowering_it_does_not_hold(setting):
    class _RoutingFails(AccuracyEvaluator):
        def holds(self, allocation, tolerance):
            self.evaluations += 1
            return all(
                bits == 8
                for layer in allocation.layers.values()
                if layer.routing is not None
                for tensor in ROUTING_TENSORS
                for bits in layer.routing.per_iteration(tensor, 3 if tensor != "logits" else 2)
            )

    allocation = get_method("error-guided")(search_context(setting, _RoutingFails))
    assert all(
        bits.routing == RoutingBits() for bits in allocation.layers.values() if bits.routing is not None
    )


def test_qcapsnets_clipping_is_its_own_or_the_runs(setting):
    """The baseline quantizes as Q-CapsNets did (no clipping); its -clipped twin under the run's rule, so
    that a results table can tell the search method from the clipping rule."""
    model, calibration, validation, analysis = setting
    own = allocate(model, calibration, validation, method="qcapsnets", tolerance=TOLERANCE, analysis=analysis)
    clipped = allocate(
        model, calibration, validation, method="qcapsnets-clipped", tolerance=TOLERANCE, analysis=analysis
    )
    assert (own.method, own.settings.clip, own.settings.weight_rounding) == ("qcapsnets", "minmax", "nearest")
    assert (clipped.method, clipped.settings.clip) == ("qcapsnets-clipped", DEFAULT_CLIP)
