"""``BitAllocation`` files: strict parsing, the check against a model, old files, and a property test."""

import json
from pathlib import Path

import pytest
from hostile_inputs import (
    ALLOCATIONS_NOT_FITTING,
    MALFORMED_ALLOCATIONS,
    SHALLOWCAPS_LAYERS,
    UNREADABLE_ALLOCATION_FILES,
    allocation_document,
    allocation_documents,
    allocation_layer_entries,
    json_values,
    valid_allocation,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capsnet_nncf_plugin.core import BitAllocation, QuantizationSettings
from capsnet_nncf_plugin.errors import AllocationError

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_round_trip_keeps_bits_settings_and_record(tmp_path):
    allocation = valid_allocation()
    loaded = BitAllocation.load(allocation.save(tmp_path / "a.json"))
    assert loaded == allocation
    assert loaded.check_layers(SHALLOWCAPS_LAYERS) is loaded


@pytest.mark.parametrize(("data", "message"), MALFORMED_ALLOCATIONS)
def test_malformed_allocations_are_one_line_errors(data, message):
    with pytest.raises(AllocationError, match=message) as raised:
        BitAllocation.from_dict(data)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(("layers", "message"), ALLOCATIONS_NOT_FITTING)
def test_an_allocation_that_does_not_fit_the_model_names_the_problem(layers, message):
    allocation = BitAllocation.from_dict(allocation_document(layers))
    with pytest.raises(AllocationError, match=message):
        allocation.check_layers(SHALLOWCAPS_LAYERS)


@pytest.mark.parametrize(("content", "message"), list(UNREADABLE_ALLOCATION_FILES.values()))
def test_unreadable_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "allocation.json"
    path.write_bytes(content)
    with pytest.raises(AllocationError, match=message) as raised:
        BitAllocation.load(path)
    assert "\n" not in str(raised.value)


def test_a_directory_and_a_missing_file_are_named(tmp_path):
    with pytest.raises(AllocationError, match=r"is a directory; pass the allocation\.json in it"):
        BitAllocation.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist; write one with `capsq quantize`"):
        BitAllocation.load(tmp_path / "missing.json")


def test_every_allocation_the_results_tables_keep_still_loads_with_its_settings():
    """Files written before ``settings`` existed kept them in ``info``; every row of docs/results*.json
    still loads, its settings read from where it keeps them."""
    loaded = 0
    for record in sorted(DOCS.glob("results*.json")):
        for entry in json.loads(record.read_text())["models"].values():
            for row in entry["methods"].values():
                data = row["allocation"]
                allocation = BitAllocation.from_dict(data)
                # Rows written since carry them as "settings"; older ones in "info".
                stored = data.get("settings") or data["info"]
                assert allocation.settings == QuantizationSettings(
                    stored["clip"], stored["bias_correction"], stored.get("weight_rounding", "nearest")
                )
                assert "clip" not in allocation.info  # one source of truth: the typed settings
                assert BitAllocation.from_dict(allocation.to_dict()) == allocation
                loaded += 1
    assert loaded >= 40


JSON_VALUES = json_values(allow_nan=False)  # a NaN would fail the round-trip equality
LAYER_ENTRIES = allocation_layer_entries(JSON_VALUES)
DOCUMENTS = allocation_documents(JSON_VALUES, st.text(max_size=12))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(DOCUMENTS, JSON_VALUES))
def test_any_document_is_an_allocation_or_a_one_line_allocation_error(data):
    try:
        allocation = BitAllocation.from_dict(data)
    except AllocationError as error:
        assert str(error) and "\n" not in str(error)
        return
    # Whatever was accepted is exactly what the file says: integer widths in range, known keys only.
    for name, bits in allocation.layers.items():
        entry = data["layers"][name]
        assert set(entry) <= {"weight", "activation", "routing"}
        assert bits.weight == entry.get("weight", 8) and isinstance(bits.weight, int)
        assert bits.activation == entry.get("activation", 8) and 2 <= bits.activation <= 16
    assert BitAllocation.from_dict(allocation.to_dict()) == allocation


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["conv1", "primary_caps", "class_caps", "conv2", "x"]), LAYER_ENTRIES))
def test_any_accepted_allocation_fits_the_model_or_says_why(layers):
    try:
        allocation = BitAllocation.from_dict(allocation_document(layers))
        allocation.check_layers(SHALLOWCAPS_LAYERS)
    except AllocationError as error:
        assert "\n" not in str(error)
        return
    assert set(allocation.layers) <= set(SHALLOWCAPS_LAYERS)
