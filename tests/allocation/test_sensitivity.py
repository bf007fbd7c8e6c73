"""The error analysis beyond single layers: blocks of several layers and single routing iterations, on a
miniature DeepCaps (one cell of four capsule layers, 3D routing in its skip branch, class capsules)."""

import math
import warnings

import pytest
from tiny_capsnet import tiny_deepcaps, tiny_images

from capsnet_nncf_plugin.allocation import analyze_errors, quantizable_layers
from capsnet_nncf_plugin.allocation.methods.block_routing import block_routing
from capsnet_nncf_plugin.allocation.methods.context import SearchContext
from capsnet_nncf_plugin.allocation.report import plot_block_sensitivity, plot_routing_sensitivity

WIDTHS = (3, 8)
CELL = ["cell.entry", "cell.main1", "cell.main2", "cell.skip"]


@pytest.fixture(scope="module")
def analysis():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyze_errors(tiny_deepcaps(), [tiny_images(32, seed=4)], candidate_bits=WIDTHS)


def test_blocks_group_the_cell_and_one_layer_blocks_read_their_layer(analysis):
    assert analysis.blocks() == {"stem": ["stem"], "cell": CELL, "classes": ["classes"]}
    assert set(analysis.block_errors) == {"cell"}  # measured: only the block of several layers
    assert analysis.block_error("stem", "weight", 3) == analysis.error("stem", "weight", 3)
    cell = analysis.block_errors["cell"]
    for kind in ("weight", "activation"):
        low, high = cell[kind][3]["sqnr_db"], cell[kind][8]["sqnr_db"]
        assert math.isfinite(low) and high > low + 15, (kind, low, high)  # ~6 dB per bit over 5 bits
        assert cell[kind][3]["mse"] > cell[kind][8]["mse"] > 0
    # All four layers at 3-bit activations add up to more error at the cell's output than its last
    # layer alone at 3 bits does at its own output.
    assert cell["activation"][3]["sqnr_db"] < analysis.sqnr("cell.main2", "activation", 3)
    assert analysis.block_ranking("weight", 3)[0] in {"stem", "cell", "classes"}


def test_routing_iterations_find_the_last_iteration_most_susceptible(analysis):
    assert analysis.iterations == {"cell.skip": 3, "classes": 3}
    assert analysis.iteration_count("classes", "logits") == 2
    assert analysis.iteration_count("classes", "output") == 3
    for layer in ("cell.skip", "classes"):
        s = [analysis.iteration_sqnr(layer, "pre_activation", t, 3) for t in range(3)]
        # An early s only steers the couplings, which the next iteration recomputes; the last s is squashed
        # straight into the layer's output.
        assert s[2] < min(s[:2]) - 10, (layer, s)
        assert analysis.iteration_ranking(layer, "pre_activation", 3)[-1] == 2
        assert analysis.iteration_sqnr(layer, "pre_activation", 2, 8) > s[2] + 15
    with pytest.raises(KeyError, match="no logits entry 2"):
        analysis.iteration_error("classes", "logits", 2, 3)


def test_the_saved_analysis_has_every_level_and_its_rankings(analysis, tmp_path):
    data = analysis.to_dict()
    assert data["blocks"]["cell"]["layers"] == CELL
    assert set(data["blocks"]["cell"]["errors"]) == {"weight", "activation"}
    assert set(data["routing_iterations"]["cell.skip"]["coupling"]) == {"0", "1", "2"}
    assert set(data["routing_iterations"]["cell.skip"]["coupling"]["2"]) == {"3", "8"}
    rankings = data["rankings"]
    assert rankings["blocks"]["weight"]["3"] == analysis.block_ranking("weight", 3)
    assert rankings["routing_iterations"]["classes"]["output"]["3"] == analysis.iteration_ranking(
        "classes", "output", 3
    )
    assert sorted(rankings["layers"]["weight"]["8"]) == sorted(["stem", *CELL, "classes"])
    plot_block_sensitivity(tmp_path / "blocks.png", analysis)
    assert plot_routing_sensitivity(tmp_path / "routing.png", analysis)
    assert (tmp_path / "blocks.png").stat().st_size > 0 and (tmp_path / "routing.png").stat().st_size > 0


def test_a_lazy_analysis_measures_a_block_entry_on_first_read_only():
    lazy = analyze_errors(tiny_deepcaps(), [tiny_images(16, seed=4)], candidate_bits=WIDTHS, lazy=True)
    assert lazy.block_errors == {} and lazy.iteration_errors == {}
    first = lazy.block_sqnr("cell", "weight", 3)
    seconds = lazy.seconds
    assert lazy.block_sqnr("cell", "weight", 3) == first and lazy.seconds == seconds
    assert list(lazy.block_errors["cell"]) == ["weight"] and lazy.errors == {}


class CountingMeasurer:
    """Wraps an analysis's measurer and counts the entries it is asked for."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, level):
        def measure(*arguments):
            self.calls += 1
            return getattr(self.inner, level)(*arguments)

        return measure


def test_a_cached_analysis_reads_back_every_level_instead_of_measuring(tmp_path):
    cache = tmp_path / "analysis" / "tiny.json"
    model, images = tiny_deepcaps(), [tiny_images(16, seed=4)]
    first = analyze_errors(model, images, candidate_bits=WIDTHS, lazy=True, cache=cache)
    measured = {
        "layer": first.error("cell.main1", "weight", 3),
        "block": first.block_error("cell", "activation", 8),
        "iteration": first.iteration_error("classes", "coupling", 2, 3),
    }
    assert cache.exists()

    second = analyze_errors(model, images, candidate_bits=WIDTHS, lazy=True, cache=cache)
    counter = CountingMeasurer(second.measure)
    second.measure = counter
    assert second.error("cell.main1", "weight", 3) == measured["layer"]
    assert second.block_error("cell", "activation", 8) == measured["block"]
    assert second.iteration_error("classes", "coupling", 2, 3) == measured["iteration"]
    assert counter.calls == 0
    second.error("stem", "activation", 8)  # a new entry is measured and joins the file
    assert counter.calls == 1
    third = analyze_errors(model, images, candidate_bits=WIDTHS, lazy=True, cache=cache)
    assert third.errors["stem"]["activation"][8] == second.errors["stem"]["activation"][8]


def test_a_cache_of_other_weights_or_images_is_measured_over(tmp_path):
    cache = tmp_path / "tiny.json"
    images = [tiny_images(16, seed=4)]
    analyze_errors(tiny_deepcaps(), images, candidate_bits=WIDTHS, lazy=True, cache=cache).error(
        "stem", "weight", 3
    )
    for model, batches in ((tiny_deepcaps(seed=1), images), (tiny_deepcaps(), [tiny_images(16, seed=5)])):
        other = analyze_errors(model, batches, candidate_bits=WIDTHS, lazy=True, cache=cache)
        assert other.errors == {}


def test_entries_of_layers_the_model_lacks_are_refused():
    analysis = analyze_errors(tiny_deepcaps(), [tiny_images(8)], candidate_bits=WIDTHS, lazy=True)
    entry = {"sqnr_db": 20.0, "mse": 0.1}
    assert analysis.absorb({"errors": {"stem": {"weight": {"3": entry}}}}) == 1
    assert analysis.errors["stem"]["weight"][3] == entry
    with pytest.raises(ValueError, match="conv9 / weight, which this model does not have"):
        analysis.absorb({"errors": {"conv9": {"weight": {"3": entry}}}})


class FloorOracle:
    """Stands in for the accuracy evaluator: an allocation holds iff every width is at least its floor."""

    def __init__(self) -> None:
        self.weight_floors = {"stem": 2, "cell.entry": 4, "cell.main1": 3, "cell.main2": 3, "cell.skip": 3}
        self.tried = []
        self.evaluations = 0

    def holds(self, allocation, tolerance):
        self.tried.append(allocation)
        self.evaluations += 1
        layers = allocation.layers
        weights = all(layers[name].weight >= self.weight_floors.get(name, 3) for name in layers)
        activations = all(bits.activation >= 4 for bits in layers.values())
        # The last iteration's s needs 5 bits, everything else in routing 3.
        s = layers["classes"].routing.per_iteration("pre_activation", 3)
        routing = all(min(bits.routing.per_iteration("coupling", 3)) >= 3 for bits in layers.values())
        return weights and activations and routing and min(s[:2]) >= 3 and s[2] >= 5


def test_block_routing_moves_the_cell_as_one_unit_and_routing_per_iteration(analysis):
    oracle = FloorOracle()
    context = SearchContext(
        layers=quantizable_layers(tiny_deepcaps()), analysis=analysis, evaluator=oracle, tolerance=1.0
    )
    allocation = block_routing(context)
    for tried in oracle.tried:  # the cell's layers never part
        assert len({tried.layers[name].weight for name in CELL}) == 1
        assert len({tried.layers[name].activation for name in CELL}) == 1
    layers = allocation.layers
    # main1, main2 and skip would hold at 3 bits alone; the cell moves as one and stops at its entry's 4.
    assert {name: bits.weight for name, bits in layers.items()} == {
        "stem": 2,
        **dict.fromkeys(CELL, 4),
        "classes": 3,
    }
    assert {bits.activation for bits in layers.values()} == {4}
    # All iterations of s at once need 5 bits; then each one alone goes one bit lower where it holds.
    assert layers["classes"].routing.per_iteration("pre_activation", 3) == (4, 4, 5)
    assert layers["classes"].routing.per_iteration("coupling", 3) == (3, 3, 3)  # its floor everywhere
