"""Hostile inputs shared by the tests and benchmarks/reliability.py, so that both run the same cases.

The tests pin each case's message; the benchmark feeds the same inputs through the Python API and the
command line and classifies the outcome (clean error, reported, accepted, crash). A case added here is
checked by both. The benchmark imports this module with tests/ on ``sys.path``, as pytest does
(``pythonpath`` in pyproject.toml).

hypothesis is a development dependency: the strategy builders import it when called, so that the
benchmark can still run its fixed cases (``--fuzz-rounds 0``) without it.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from capsnet_nncf_plugin.core import BitAllocation, LayerBits, QuantizationSettings, RoutingBits
from capsnet_nncf_plugin.models.checkpoint import FORMAT, VERSION

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

# --- bit allocations ---------------------------------------------------------------------------------------

#: ShallowCaps' quantizable layers: name -> routing iterations (None: it does not route).
SHALLOWCAPS_LAYERS: dict[str, int | None] = {"conv1": None, "primary_caps": None, "class_caps": 3}


def allocation_document(layers: dict, **extra: Any) -> dict:
    """A BitAllocation document of format 1 with these layers; ``extra`` adds or replaces top-level keys."""
    return {"format": 1, "method": "manual", "info": {}, "layers": layers, **extra}


def valid_allocation() -> BitAllocation:
    """An allocation using every feature a file can hold (routing widths, settings, info): a round trip
    must give it back equal."""
    return BitAllocation(
        {
            "conv1": LayerBits(5, 4),
            "class_caps": LayerBits(3, 6, RoutingBits(logits=(6, 5), coupling=7, output=(8, 7, 6))),
        },
        method="error-guided",
        info={"tolerance": 0.1},
        settings=QuantizationSettings(clip="mse", weight_rounding="gptq"),
    )


#: Documents ``BitAllocation.from_dict`` refuses, each with a regular expression its one-line
#: AllocationError matches.
MALFORMED_ALLOCATIONS: list[tuple[Any, str]] = [
    ([1, 2], r"is a list, not an object with keys format, method, layers"),
    ({"layers": {}}, r"not a bit allocation of format 1 \(format is None\)"),
    (allocation_document({"conv1": {"weight": 2}}, extra_key=1), r"unknown keys \['extra_key'\]"),
    (allocation_document({"conv1": {"wieght": 3}}), r"layer 'conv1': unknown keys \['wieght'\]"),
    (allocation_document({"conv1": 5}), r"layer 'conv1': a layer's bits must be an object"),
    (
        allocation_document({"conv1": {"weight": 4.9}}),
        r"layer 'conv1': weight_bits must be an integer in 2\.\.16, got 4\.9",
    ),
    (allocation_document({"conv1": {"weight": "4"}}), r"weight_bits must be an integer in 2\.\.16, got '4'"),
    (
        allocation_document({"conv1": {"activation": True}}),
        r"activation_bits must be an integer in 2\.\.16, got True",
    ),
    (allocation_document({"conv1": {"weight": 1}}), r"weight_bits must be an integer in 2\.\.16, got 1"),
    (
        allocation_document({"c": {"routing": {"logit": 4}}}),
        r"layer 'c': unknown routing tensors \['logit'\]",
    ),
    (
        allocation_document({"c": {"routing": {"logits": [4, 2.5]}}}),
        r"routing logits bits must be an integer",
    ),
    (allocation_document({"c": {"routing": "8"}}), r"routing bits must be one width or an object"),
    (allocation_document({}, info=[1]), r"'info' must be an object, got list"),
    (allocation_document({"conv1": {}}, method=5), r"'method' must be a string, got 5"),
    (allocation_document({"conv1": {}}, settings={"clip": "max"}), r"'settings': clip must be one of"),
    (
        allocation_document({"conv1": {}}, settings={"bias_correction": "yes"}),
        r"bias_correction must be true or false",
    ),
    (
        allocation_document({str(i): {} for i in range(10_001)}),
        r"lists 10001 layers; no capsule network has that many",
    ),
]
#: Well-formed layers that ``check_layers(SHALLOWCAPS_LAYERS)`` refuses, with a pattern of the error.
ALLOCATIONS_NOT_FITTING: list[tuple[dict, str]] = [
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
]
#: File contents ``BitAllocation.load`` refuses: name -> (content, pattern of the error).
UNREADABLE_ALLOCATION_FILES: dict[str, tuple[bytes, str]] = {
    "truncated JSON": (b"{", r"is not valid JSON"),
    "UTF-16 bytes": (b"\xff\xfe{}", r"is not UTF-8 text"),
    "200,000 nested lists": (b"[" * 200_000 + b"]" * 200_000, r"is not valid JSON"),
    "NaN literal": (
        b'{"format": 1, "layers": {"a": {"weight": NaN}}}',
        r"is not valid JSON \(NaN is not a JSON number\)",
    ),
}


def json_values(*, allow_nan: bool = True) -> SearchStrategy[Any]:
    """Any JSON-like value, nested up to 20 leaves. A round-trip equality check needs ``allow_nan=False``
    (NaN is not equal to itself)."""
    from hypothesis import strategies as st

    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**40), 2**40)
        | st.floats(allow_nan=allow_nan)
        | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )


def allocation_layer_entries(values: SearchStrategy[Any]) -> SearchStrategy[dict]:
    """One layer's entry: the real keys and misspelled ones, with widths in and out of range or ``values``."""
    from hypothesis import strategies as st

    return st.dictionaries(
        st.sampled_from(["weight", "activation", "routing", "wieght", "bits"]),
        st.one_of(st.integers(-2, 20), st.floats(0, 20), values),
        max_size=3,
    )


def allocation_documents(
    values: SearchStrategy[Any], layer_names: SearchStrategy[str], max_layers: int | None = None
) -> SearchStrategy[dict]:
    """Allocation documents: a mostly right format, layers named by ``layer_names``, and optional
    top-level keys (``extra`` is unknown) holding ``values``."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries(
        {
            "format": st.sampled_from([1, 1, 1, 2, "1"]),
            "layers": st.dictionaries(layer_names, allocation_layer_entries(values), max_size=max_layers),
        },
        optional={"method": values, "info": values, "settings": values, "extra": values},
    )


# --- NNCF configurations -----------------------------------------------------------------------------------

#: Configurations ``load_config`` refuses because they ask for what the adapter does not do, each with a
#: regular expression its ConfigError matches (naming the key and the fix).
BAD_NNCF_CONFIGS: list[tuple[Any, str]] = [
    ({"subset_sise": 8}, r"unknown nncf.quantize argument\(s\) \['subset_sise'\]"),
    ({"preset": "mixed"}, "use preset 'performance'"),
    ({"target_device": "TPU"}, r"'target_device': 'TPU' is not one of"),
    ({"advanced_parameters": {"overflow_fix": "enable"}}, "set it to 'disable'"),
    ({"advanced_parameters": {"no_such": 1}}, r"unknown key\(s\) \['no_such'\] in 'advanced_parameters'"),
    ({"capsnet": {"bitz": 4}}, r"unknown key\(s\) in 'capsnet': \['bitz'\]"),
    ({"capsnet": {"weight_bits": 1}}, "capsnet.weight_bits"),
    ({"capsnet": {"clip": "max"}}, "capsnet.clip"),
    ({"capsnet": {"tolerance": -1}}, "tolerance must be >= 0"),
    ({"capsnet": {"method": "uniform-8", "allocation": "a.json"}}, "not both"),
    ({"compression": [{"algorithm": "magnitude_sparsity"}]}, "post-training quantization"),
    (
        {"compression": [{"algorithm": "quantization", "initializer": {"precision": {"type": "hawq"}}}]},
        "no precision initializers",
    ),
    (
        {"compression": [{"algorithm": "quantization", "activations": {"mode": "asymmetric"}}]},
        "set it to 'symmetric'",
    ),
    (
        {"compression": [{"algorithm": "quantization", "initializer": {"range": {"type": "percentile"}}}]},
        "activations_range_estimator_params",
    ),
    ({"log_dir": "/tmp", "compression": []}, "'log_dir' is not supported"),
    ([1, 2], "a configuration is a mapping"),
]
#: Configurations with a value of the wrong type or range, each with a substring of its one-line
#: ConfigError (naming the key).
WRONGLY_TYPED_NNCF_CONFIGS: list[tuple[Any, str]] = [
    ({"capsnet": {"tolerance": float("nan")}}, "capsnet.tolerance must be a finite number"),
    ({"capsnet": {"tolerance": float("inf")}}, "capsnet.tolerance must be a finite number"),
    ({"capsnet": {"tolerance": 1000}}, "capsnet.tolerance must be >= 0 and <= 100 percentage points"),
    # A 400-digit JSON integer: math.isfinite() would overflow converting it to float.
    ({"capsnet": {"tolerance": 10**400}}, "capsnet.tolerance must be >= 0 and <= 100 percentage points"),
    ({"capsnet": {"tolerance": True}}, "capsnet.tolerance must be a finite number"),
    ({"subset_size": "ten"}, "'subset_size' must be a positive integer, got 'ten'"),
    ({"subset_size": -1}, "'subset_size' counts something, so it must be a positive integer, got -1"),
    ({"subset_size": 0}, "'subset_size' counts something"),
    ({"subset_size": 1.5}, "'subset_size' must be a positive integer, got 1.5"),
    ({"subset_size": True}, "'subset_size' must be a positive integer, got true"),
    ({"fast_bias_correction": "yes"}, "'fast_bias_correction' must be true or false, got 'yes'"),
    ({"capsnet": {"method": 5}}, "capsnet.method must be one of ["),
    ({"capsnet": {"method": "no-such-method"}}, "got 'no-such-method'"),
    ({"capsnet": {"allocation": 5}}, "capsnet.allocation must be the path of a BitAllocation JSON file"),
    ({"capsnet": {"clip": ["mse"]}}, "capsnet.clip"),
    ({"capsnet": {"criterion": {}}}, "capsnet.criterion must be one of"),
    (
        {"ignored_scope": {"names": "conv1"}},
        "'ignored_scope.names' must be a list of strings, got the string",
    ),
    ({"ignored_scope": {"names": ["conv1", 5]}}, "'ignored_scope.names[1]' must be a string, got 5"),
    (
        {"ignored_scope": {"patterns": ["conv("]}},
        "'ignored_scope.patterns[0]' 'conv(' is not a valid regular",
    ),
    ({"ignored_scope": ["conv1"]}, "'ignored_scope' must be a mapping of IgnoredScope fields"),
    ({"preset": 5}, "'preset': 5 is not one of ['performance', 'mixed']"),
    ({"target_device": None}, "'target_device' must be one of"),
    (
        {"advanced_parameters": 5},
        "'advanced_parameters' must be a mapping of AdvancedQuantizationParameters",
    ),
    (
        {"advanced_parameters": {"smooth_quant_alpha": float("nan")}},
        "smooth_quant_alpha' must be a finite",
    ),
    (
        {"advanced_parameters": {"backend_params": [1]}},
        "'advanced_parameters.backend_params' must be a map",
    ),
    (
        {"advanced_parameters": {"activations_quantization_params": {"num_bits": 0}}},
        "'advanced_parameters.activations_quantization_params.num_bits' counts something",
    ),
    (
        {"advanced_parameters": {"activations_quantization_params": {"bits": 8}}},
        r"unknown key(s) ['bits'] in 'advanced_parameters.activations_quantization_params'",
    ),
    ({1: 2, "subset_size": 8}, "unknown nncf.quantize argument(s) ['1']"),
    ({"capsnet": {None: 1}}, "unknown key(s) in 'capsnet': ['None']"),
    # NNCF 2.x layout
    (
        {"compression": [{"algorithm": "quantization", "initializer": {"range": {"num_init_samples": -5}}}]},
        "'compression[quantization].initializer.range.num_init_samples' counts calibration samples",
    ),
    (
        {"compression": [{"algorithm": "quantization", "ignored_scopes": ["{re}conv("]}]},
        "'{re}conv(' is not a valid regular expression (missing ), unterminated subpattern",
    ),
    (
        {"compression": [{"algorithm": "quantization", "ignored_scopes": 5}]},
        "must be a list of node names",
    ),
    (
        {"compression": [{"algorithm": "quantization", "ignored_scopes": [5]}]},
        "must be a list of node names",
    ),
    (
        {"compression": [{"algorithm": "quantization", "weights": {"bits": "8"}}]},
        "'compression[quantization].weights.bits' must be an integer in",
    ),
    ({"compression": 5}, "NNCF 2.x key 'compression' must be a list of algorithm entries"),
    ({"compression": [{"algorithm": ["quantization"]}]}, "an entry of 'compression' has algorithm"),
    ({"compression": [{"algorithm": "quantization", "preset": 5}]}, "'preset': 5 is not one of"),
]


#: A configuration in the ``nncf.quantize`` layout using every kind of key the adapter maps.
QUANTIZE_LAYOUT_NNCF_CONFIG: dict[str, Any] = {
    "preset": "performance",
    "target_device": "cpu",
    "subset_size": 64,
    "fast_bias_correction": False,
    "ignored_scope": {"names": ["conv1/conv2d/0"]},
    "advanced_parameters": {"activations_range_estimator_params": {"max": {"statistics_type": "quantile"}}},
    "capsnet": {"clip": "mse", "weight_bits": 6, "routing_bits": 7},
}
#: A configuration in the NNCF 2.x layout (``compression`` entries) using the keys the adapter maps.
LEGACY_LAYOUT_NNCF_CONFIG: dict[str, Any] = {
    "input_info": {"sample_size": [1, 1, 28, 28]},
    "target_device": "CPU",
    "compression": [
        {
            "algorithm": "quantization",
            "initializer": {"range": {"num_init_samples": 128, "type": "min_max"}},
            "weights": {"mode": "symmetric", "bits": 6},
            "activations": {"mode": "symmetric", "bits": 7},
            "ignored_scopes": ["conv1/conv2d/0", "{re}.*routing.*"],
        },
        {"algorithm": "capsnet_progressive_bitwidth", "clip": "percentile", "routing_bits": 6},
    ],
}
#: NNCF 2.x ``ignored_scopes`` as one string: valid, one node name (not a list of its characters).
LEGACY_IGNORED_SCOPE_STRING_NNCF_CONFIG: dict[str, Any] = {
    "compression": [{"algorithm": "quantization", "ignored_scopes": "conv1"}]
}


def nncf_quantize_keys() -> list[str]:
    """The ``nncf.quantize`` arguments a configuration may set: all but the model and the data."""
    import nncf

    return sorted(set(inspect.signature(nncf.quantize).parameters) - {"model", "calibration_dataset"})


def _nncf_json() -> SearchStrategy[Any]:
    from hypothesis import strategies as st

    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    )


def _nncf_values() -> Callable[[str], SearchStrategy[Any]]:
    """``values(key)``: a JSON-like value for ``key``, of the right shape now and then, so that valid
    configurations are drawn too."""
    from hypothesis import strategies as st

    json = _nncf_json()
    plausible = {
        "subset_size": st.integers(-2, 400),
        "fast_bias_correction": st.booleans(),
        "preset": st.sampled_from(["performance", "mixed", "PERFORMANCE"]),
        "target_device": st.sampled_from(["CPU", "cpu", "ANY", "TPU"]),
        "ignored_scope": st.fixed_dictionaries(
            {},
            optional={
                "names": st.lists(st.text(max_size=5)) | json,
                "patterns": st.lists(st.text(max_size=5)),
            },
        ),
        "advanced_parameters": st.fixed_dictionaries(
            {},
            optional={
                "overflow_fix": st.sampled_from(["disable", "enable"]) | json,
                "smooth_quant_alpha": st.floats() | json,
                "activations_quantization_params": st.fixed_dictionaries({}, optional={"num_bits": json})
                | json,
                "activations_range_estimator_params": st.fixed_dictionaries(
                    {},
                    optional={
                        "max": st.fixed_dictionaries(
                            {},
                            optional={"statistics_type": st.sampled_from(["quantile", "max", "nope"]) | json},
                        )
                    },
                ),
                "backend_params": st.dictionaries(st.text(max_size=4), json, max_size=2) | json,
            },
        ),
        "tolerance": st.floats() | st.integers(-5, 200),
        "weight_bits": st.integers(0, 10),
        "clip": st.sampled_from(["mse", "minmax", "max"]),
    }
    return lambda key: plausible.get(key, json) | json


def nncf_quantize_layout_configs() -> SearchStrategy[dict[str, Any]]:
    """Configurations in the ``nncf.quantize`` layout: any of its keys and the ``capsnet`` section's."""
    from hypothesis import strategies as st

    from capsnet_nncf_plugin.nncf import CapsnetSection

    values = _nncf_values()
    capsnet_keys = [item.name for item in dataclasses.fields(CapsnetSection)]
    return st.fixed_dictionaries(
        {},
        optional={
            **{key: values(key) for key in nncf_quantize_keys()},
            "capsnet": st.fixed_dictionaries({}, optional={key: values(key) for key in capsnet_keys})
            | _nncf_json(),
        },
    )


def nncf_legacy_layout_configs() -> SearchStrategy[dict[str, Any]]:
    """Configurations in the NNCF 2.x layout: ``compression`` entries of the two algorithms the adapter
    maps, entries of other algorithms, and JSON-like values."""
    from hypothesis import strategies as st

    values = _nncf_values()
    json = _nncf_json()
    quantization = st.fixed_dictionaries(
        {"algorithm": st.just("quantization")},
        optional={
            "initializer": st.fixed_dictionaries(
                {},
                optional={
                    "range": st.fixed_dictionaries({}, optional={"num_init_samples": values("subset_size")})
                },
            ),
            "ignored_scopes": st.lists(st.sampled_from(["conv1", "{re}.*", "{re}(", "{re}[a-"]), max_size=3)
            | json,
            "weights": st.fixed_dictionaries(
                {}, optional={"bits": values("weight_bits"), "mode": st.just("symmetric")}
            ),
            "preset": values("preset"),
        },
    )
    capsnet = st.fixed_dictionaries(
        {"algorithm": st.just("capsnet_progressive_bitwidth")},
        optional={key: values(key) for key in ("tolerance", "weight_bits", "clip")},
    )
    return st.fixed_dictionaries(
        {
            "compression": st.lists(
                quantization | capsnet | st.dictionaries(st.just("algorithm"), json) | json, max_size=2
            )
            | json
        },
        optional={"target_device": values("target_device"), "input_info": json},
    )


# --- checkpoints -------------------------------------------------------------------------------------------

#: A payload key's value that means: leave the key out.
ABSENT = object()


def checkpoint_payload(weights: dict, /, **changes: Any) -> dict[str, Any]:
    """A valid ShallowCaps checkpoint payload holding ``weights``, with ``changes`` replacing its keys
    (``ABSENT`` removes one). ``weights`` is positional-only so that a change may replace ``state_dict``."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": "shallowcaps",
        "config": {"num_classes": 10},
        "state_dict": weights,
        "metadata": {"dataset": "mnist"},
    }
    payload.update(changes)
    return {key: value for key, value in payload.items() if value is not ABSENT}


#: Changes to the valid payload that each make ``load_checkpoint`` refuse it, with a substring of its
#: one-line CheckpointError.
MALFORMED_CHECKPOINT_CHANGES: list[tuple[dict[str, Any], str]] = [
    ({"version": "2"}, "format version '2' is not a positive integer"),
    ({"version": ABSENT}, "format version None is not a positive integer"),
    ({"version": True}, "format version True is not a positive integer"),
    ({"config": ABSENT}, "it has no 'config'"),
    ({"model": 5}, "'model' is 5, not one of ['deepcaps', 'shallowcaps']"),
    ({"model": "resnet"}, "'model' is 'resnet', not one of"),
    ({"config": [1, 28, 10]}, "'config' is list, not a mapping of constructor arguments"),
    ({"config": {"num_classes": -5}}, "config 'num_classes' is -5, not an integer in 1..1000"),
    ({"config": {"num_classes": 10**6}}, "config 'num_classes' is 1000000, not an integer in 1..1000"),
    ({"config": {"num_classes": 10.0}}, "config 'num_classes' is 10.0, not an integer in 1..1000"),
    ({"config": {"num_classes": True}}, "config 'num_classes' is True, not an integer"),
    ({"config": {"decoder": 1}}, "config 'decoder' is 1, not true/false"),
    ({"config": {"pixel_shift": 17}}, "config 'pixel_shift' is 17, not an integer in 0..16"),
    ({"config": {"num_clases": 10}}, "config key 'num_clases' is not an argument of shallowcaps"),
    ({"config": {3: 10}}, "config key 3 is not an argument of shallowcaps"),
    ({"config": {"image_size": 20}}, "cannot build: ShallowCaps needs images of at least 25x25 pixels"),
    ({"state_dict": ABSENT}, "'state_dict' is None, not a mapping of weights"),
    ({"state_dict": [1, 2]}, "'state_dict' is list, not a mapping of weights"),
    ({"state_dict": {"conv1.weight": 5}}, "'state_dict' entry 'conv1.weight' is 5, not a tensor"),
    ({"metadata": [1]}, "'metadata' is list, not a mapping with string keys"),
    ({"metadata": {"dataset": 5}}, "metadata 'dataset' is 5, not a dataset name"),
    ({"metadata": {"dataset": ""}}, "metadata 'dataset' is '', not a dataset name"),
    ({"training_state": 5}, "'training_state' is 5, not a mapping"),
]


def checkpoint_payloads(weights: dict) -> SearchStrategy[dict[str, Any]]:
    """The valid payload holding ``weights`` with up to three keys replaced by arbitrary values or removed.
    A drawn ``state_dict`` is ``weights`` itself (the only one that can load), ``weights`` with one entry
    replaced, a few made-up entries, or a JSON-like value."""
    from hypothesis import strategies as st

    json = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=6,
    )
    config_keys = st.sampled_from(
        [
            "in_channels",
            "image_size",
            "num_classes",
            "routing_iterations",
            "class_bias",
            "decoder",
            "pixel_shift",
        ]
    )
    tensors = st.sampled_from(
        [torch.zeros(1), torch.ones(2, 2), torch.tensor([math.nan]), torch.zeros(3, dtype=torch.int64)]
    )

    def weights_with(key: str, value: Any) -> dict:
        changed = dict(weights)
        changed[key] = value
        return changed

    mutations = {
        "version": json,
        "model": st.sampled_from(["deepcaps", "ShallowCaps"]) | json,
        "config": json
        | st.dictionaries(
            config_keys | st.text(max_size=6), st.integers(-3, 300) | st.booleans() | json, max_size=3
        ),
        "state_dict": json
        | st.just(weights)
        | st.dictionaries(
            st.sampled_from(sorted(weights)[:3]) | st.text(max_size=6), tensors | json, max_size=3
        )
        | st.builds(weights_with, st.sampled_from(sorted(weights)), tensors | json),
        "metadata": st.dictionaries(st.just("dataset"), json) | json,
        "training_state": json,
    }

    @st.composite
    def payloads(draw: st.DrawFn) -> dict[str, Any]:
        payload = checkpoint_payload(weights)
        for key in draw(st.lists(st.sampled_from(sorted(mutations)), max_size=3, unique=True)):
            if draw(st.booleans()):
                payload[key] = draw(mutations[key])
            else:
                payload.pop(key, None)
        return payload

    return payloads()
