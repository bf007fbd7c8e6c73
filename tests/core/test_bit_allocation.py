"""``BitAllocation`` files: strict parsing, the check against a model, old files, and a property test."""

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capsnet_nncf_plugin.core import BitAllocation, LayerBits, QuantizationSettings, RoutingBits
from capsnet_nncf_plugin.errors import AllocationError

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: ShallowCaps' quantizable layers: name -> routing iterations (None: it does not route).
SHALLOWCAPS = {"conv1": None, "primary_caps": None, "class_caps": 3}


def document(layers: dict, **extra) -> dict:
    return {"format": 1, "method": "manual", "info": {}, "layers": layers, **extra}


def test_round_trip_keeps_bits_settings_and_record(tmp_path):
    allocation = BitAllocation(
        {
            "conv1": LayerBits(5, 4),
            "class_caps": LayerBits(3, 6, RoutingBits(logits=(6, 5), coupling=7, output=(8, 7, 6))),
        },
        method="error-guided",
        info={"tolerance": 0.1},
        settings=QuantizationSettings(clip="mse", weight_rounding="gptq"),
    )
    loaded = BitAllocation.load(allocation.save(tmp_path / "a.json"))
    assert loaded == allocation
    assert loaded.check_layers(SHALLOWCAPS) is loaded


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], r"is a list, not an object with keys format, method, layers"),
        ({"layers": {}}, r"not a bit allocation of format 1 \(format is None\)"),
        (document({"conv1": {"weight": 2}}, extra_key=1), r"unknown keys \['extra_key'\]"),
        (document({"conv1": {"wieght": 3}}), r"layer 'conv1': unknown keys \['wieght'\]"),
        (document({"conv1": 5}), r"layer 'conv1': a layer's bits must be an object"),
        (
            document({"conv1": {"weight": 4.9}}),
            r"layer 'conv1': weight_bits must be an integer in 2\.\.16, got 4\.9",
        ),
        (document({"conv1": {"weight": "4"}}), r"weight_bits must be an integer in 2\.\.16, got '4'"),
        (
            document({"conv1": {"activation": True}}),
            r"activation_bits must be an integer in 2\.\.16, got True",
        ),
        (document({"conv1": {"weight": 1}}), r"weight_bits must be an integer in 2\.\.16, got 1"),
        (document({"c": {"routing": {"logit": 4}}}), r"layer 'c': unknown routing tensors \['logit'\]"),
        (document({"c": {"routing": {"logits": [4, 2.5]}}}), r"routing logits bits must be an integer"),
        (document({"c": {"routing": "8"}}), r"routing bits must be one width or an object"),
        (document({}, info=[1]), r"'info' must be an object, got list"),
        (document({"conv1": {}}, method=5), r"'method' must be a string, got 5"),
        (document({"conv1": {}}, settings={"clip": "max"}), r"'settings': clip must be one of"),
        (
            document({"conv1": {}}, settings={"bias_correction": "yes"}),
            r"bias_correction must be true or false",
        ),
        (
            document({str(i): {} for i in range(10_001)}),
            r"lists 10001 layers; no capsule network has that many",
        ),
    ],
)
def test_malformed_allocations_are_one_line_errors(data, message):
    with pytest.raises(AllocationError, match=message) as raised:
        BitAllocation.from_dict(data)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            {"conv_1": {"weight": 2}},
            r"names 1 layer\(s\) the model does not have \('conv_1'\); its quantizable "
            r"layers are 'conv1', 'primary_caps', 'class_caps'",
        ),
        ({"conv1 ": {}}, r"\('conv1 '\)"),
        ({f"made_up_{i}": {} for i in range(300_0)}, r"names 3000 layer\(s\) .*'made_up_11' and 2988 more"),
        (
            {"conv1": {"routing": 6}},
            r"layer 'conv1' does not route, but the allocation gives it routing bits",
        ),
        (
            {"class_caps": {"routing": {"logits": [6, 6, 6]}}},
            r"routing logits has 3 entries but the layer routes "
            r"3 times and needs 2",
        ),
    ],
)
def test_an_allocation_that_does_not_fit_the_model_names_the_problem(layers, message):
    allocation = BitAllocation.from_dict(document(layers))
    with pytest.raises(AllocationError, match=message):
        allocation.check_layers(SHALLOWCAPS)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", r"is not valid JSON"),
        (b"\xff\xfe{}", r"is not UTF-8 text"),
        (b"[" * 200_000 + b"]" * 200_000, r"is not valid JSON"),
        (
            b'{"format": 1, "layers": {"a": {"weight": NaN}}}',
            r"is not valid JSON \(NaN is not a JSON number\)",
        ),
    ],
)
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
    still loads, its settings read from there."""
    loaded = 0
    for record in sorted(DOCS.glob("results*.json")):
        for entry in json.loads(record.read_text())["models"].values():
            for row in entry["methods"].values():
                data = row["allocation"]
                allocation = BitAllocation.from_dict(data)
                info = data["info"]
                assert allocation.settings == QuantizationSettings(
                    info["clip"], info["bias_correction"], info.get("weight_rounding", "nearest")
                )
                assert "clip" not in allocation.info  # one source of truth: the typed settings
                assert BitAllocation.from_dict(allocation.to_dict()) == allocation
                loaded += 1
    assert loaded >= 40


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
LAYER_ENTRIES = st.dictionaries(
    st.sampled_from(["weight", "activation", "routing", "wieght", "bits"]),
    st.one_of(st.integers(-2, 20), st.floats(0, 20), JSON_VALUES),
    max_size=3,
)
DOCUMENTS = st.fixed_dictionaries(
    {
        "format": st.sampled_from([1, 1, 1, 2, "1"]),
        "layers": st.dictionaries(st.text(max_size=12), LAYER_ENTRIES),
    },
    optional={"method": JSON_VALUES, "info": JSON_VALUES, "settings": JSON_VALUES, "extra": JSON_VALUES},
)


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
        allocation = BitAllocation.from_dict(document(layers))
        allocation.check_layers(SHALLOWCAPS)
    except AllocationError as error:
        assert "\n" not in str(error)
        return
    assert set(allocation.layers) <= set(SHALLOWCAPS)
