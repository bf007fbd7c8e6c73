"""Both configuration layouts of the NNCF adapter: good ones become nncf objects, bad ones clear errors."""

import dataclasses
import inspect
import json
import math
import re

import nncf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
from nncf.quantization.range_estimator import StatisticsType

from capsnet_nncf_plugin.errors import CapsqError, run_reporting_user_errors
from capsnet_nncf_plugin.nncf import CapsnetSection, ConfigError, load_config


def test_quantize_layout_becomes_nncf_objects():
    config = load_config(
        {
            "preset": "performance",
            "target_device": "cpu",
            "subset_size": 64,
            "fast_bias_correction": False,
            "ignored_scope": {"names": ["conv1/conv2d/0"]},
            "advanced_parameters": {
                "activations_range_estimator_params": {"max": {"statistics_type": "quantile"}}
            },
            "capsnet": {"clip": "mse", "weight_bits": 6, "routing_bits": 7},
        }
    )
    kwargs = config.quantize_kwargs
    assert config.layout == "nncf.quantize"
    assert kwargs["preset"] is nncf.QuantizationPreset.PERFORMANCE
    assert kwargs["target_device"] is nncf.TargetDevice.CPU
    assert kwargs["subset_size"] == 64 and kwargs["fast_bias_correction"] is False
    assert kwargs["ignored_scope"] == nncf.IgnoredScope(names=["conv1/conv2d/0"])
    estimator = kwargs["advanced_parameters"].activations_range_estimator_params
    assert estimator.max.statistics_type is StatisticsType.QUANTILE
    assert kwargs["advanced_parameters"].overflow_fix is OverflowFix.DISABLE
    assert config.capsnet == CapsnetSection(clip="mse", weight_bits=6, routing_bits=7)


def test_json_and_yaml_files(tmp_path):
    data = {"subset_size": 8, "capsnet": {"activation_bits": 6}}
    json_path = tmp_path / "nncf.json"
    json_path.write_text(json.dumps(data))
    yaml_path = tmp_path / "nncf.yaml"
    yaml_path.write_text("subset_size: 8\ncapsnet:\n  activation_bits: 6\n")
    for path in (json_path, str(yaml_path)):
        config = load_config(path)
        assert config.quantize_kwargs["subset_size"] == 8
        assert config.capsnet.activation_bits == 6


def test_legacy_layout_maps_common_keys():
    config = load_config(
        {
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
    )
    assert config.layout == "nncf-2.x"
    assert config.quantize_kwargs["subset_size"] == 128
    assert config.quantize_kwargs["target_device"] is nncf.TargetDevice.CPU
    assert config.quantize_kwargs["ignored_scope"] == nncf.IgnoredScope(
        names=["conv1/conv2d/0"], patterns=[".*routing.*"]
    )
    assert config.capsnet == CapsnetSection(
        clip="percentile", weight_bits=6, activation_bits=7, routing_bits=6
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
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
            {
                "compression": [
                    {"algorithm": "quantization", "initializer": {"range": {"type": "percentile"}}}
                ]
            },
            "activations_range_estimator_params",
        ),
        ({"log_dir": "/tmp", "compression": []}, "'log_dir' is not supported"),
        ([1, 2], "a configuration is a mapping"),
    ],
)
def test_bad_configurations_name_the_key_and_the_fix(config, message):
    with pytest.raises(ConfigError, match=message):
        load_config(config)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{subset_size: 8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(broken)
    toml = tmp_path / "nncf.toml"
    toml.write_text("subset_size = 8")
    with pytest.raises(ConfigError, match=r"ends in .json, .yaml or .yml"):
        load_config(toml)


# --- values of the wrong type or range: each a one-line ConfigError naming the key --------------------------


def _config_error(config) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    message = str(raised.value)
    assert "\n" not in message, message
    return message


def test_config_error_is_a_user_error():
    assert issubclass(ConfigError, CapsqError) and issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"capsnet": {"tolerance": float("nan")}}, "capsnet.tolerance must be a finite number"),
        ({"capsnet": {"tolerance": float("inf")}}, "capsnet.tolerance must be a finite number"),
        ({"capsnet": {"tolerance": 1000}}, "capsnet.tolerance must be >= 0 and <= 100 percentage points"),
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
            {
                "compression": [
                    {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": -5}}}
                ]
            },
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
    ],
)
def test_wrongly_typed_values_name_the_key(config, expected):
    assert expected in _config_error(config)


def test_a_legacy_ignored_scope_string_is_one_name_not_its_characters():
    config = load_config({"compression": [{"algorithm": "quantization", "ignored_scopes": "conv1"}]})
    assert config.quantize_kwargs["ignored_scope"] == nncf.IgnoredScope(names=["conv1"])


def test_json_nan_and_infinity_literals_are_refused(tmp_path):
    path = tmp_path / "nncf.json"
    path.write_text('{"capsnet": {"tolerance": NaN}}')
    assert "capsnet.tolerance must be a finite number" in _config_error(path)
    path.write_text('{"advanced_parameters": {"bias_correction_params": {"threshold": Infinity}}}')
    assert "'advanced_parameters.bias_correction_params.threshold' must be a finite number" in _config_error(
        path
    )


def test_hostile_config_files(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    assert _config_error(deep) == f"{deep} nests its values too deeply to be a configuration"
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"capsnet": {"method": "d\xe9j\xe0"}}'.encode("latin-1"))
    assert "is not UTF-8 text (byte 25 cannot be decoded); save it as UTF-8" in _config_error(latin1)
    yaml_error = tmp_path / "bad.yaml"
    yaml_error.write_text("subset_size: [1,\n  2\nfast: {")
    assert _config_error(yaml_error).startswith(f"{yaml_error} is not valid YAML: ")
    assert "is a directory" in _config_error(tmp_path)
    # The command line prints a ConfigError as one line with exit status 2.
    assert run_reporting_user_errors(lambda: load_config(deep), "capsq run") == 2
    assert (
        capsys.readouterr().err
        == f"capsq run: error: {deep} nests its values too deeply to be a configuration\n"
    )


# --- property: arbitrary JSON-like values for every key ----------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_QUANTIZE_KEYS = sorted(set(inspect.signature(nncf.quantize).parameters) - {"model", "calibration_dataset"})
_CAPSNET_KEYS = [field.name for field in dataclasses.fields(CapsnetSection)]
# Values of the right shape now and then, so that valid configurations are drawn too.
_PLAUSIBLE = {
    "subset_size": st.integers(-2, 400),
    "fast_bias_correction": st.booleans(),
    "preset": st.sampled_from(["performance", "mixed", "PERFORMANCE"]),
    "target_device": st.sampled_from(["CPU", "cpu", "ANY", "TPU"]),
    "ignored_scope": st.fixed_dictionaries(
        {},
        optional={"names": st.lists(st.text(max_size=5)) | _json, "patterns": st.lists(st.text(max_size=5))},
    ),
    "advanced_parameters": st.fixed_dictionaries(
        {},
        optional={
            "overflow_fix": st.sampled_from(["disable", "enable"]) | _json,
            "smooth_quant_alpha": st.floats() | _json,
            "activations_quantization_params": st.fixed_dictionaries({}, optional={"num_bits": _json})
            | _json,
            "backend_params": st.dictionaries(st.text(max_size=4), _json, max_size=2) | _json,
        },
    ),
    "tolerance": st.floats() | st.integers(-5, 200),
    "weight_bits": st.integers(0, 10),
    "clip": st.sampled_from(["mse", "minmax", "max"]),
}


def _values(key: str) -> st.SearchStrategy:
    return _PLAUSIBLE.get(key, _json) | _json


_configs = st.fixed_dictionaries(
    {},
    optional={
        **{key: _values(key) for key in _QUANTIZE_KEYS},
        "capsnet": st.fixed_dictionaries({}, optional={key: _values(key) for key in _CAPSNET_KEYS}) | _json,
    },
)
_legacy_quantization = st.fixed_dictionaries(
    {"algorithm": st.just("quantization")},
    optional={
        "initializer": st.fixed_dictionaries(
            {},
            optional={
                "range": st.fixed_dictionaries({}, optional={"num_init_samples": _values("subset_size")})
            },
        ),
        "ignored_scopes": st.lists(st.sampled_from(["conv1", "{re}.*", "{re}(", "{re}[a-"]), max_size=3)
        | _json,
        "weights": st.fixed_dictionaries(
            {}, optional={"bits": _values("weight_bits"), "mode": st.just("symmetric")}
        ),
        "preset": _values("preset"),
    },
)
_legacy_capsnet = st.fixed_dictionaries(
    {"algorithm": st.just("capsnet_progressive_bitwidth")},
    optional={key: _values(key) for key in ("tolerance", "weight_bits", "clip")},
)
_legacy_configs = st.fixed_dictionaries(
    {
        "compression": st.lists(
            _legacy_quantization | _legacy_capsnet | st.dictionaries(st.just("algorithm"), _json) | _json,
            max_size=2,
        )
        | _json
    },
    optional={"target_device": _values("target_device"), "input_info": _json},
)


def _assert_valid(config) -> None:
    kwargs = config.quantize_kwargs
    assert set(kwargs) <= set(_QUANTIZE_KEYS) and kwargs.get("mode") is None
    subset_size = kwargs.get("subset_size", 300)
    assert type(subset_size) is int and subset_size >= 1
    assert type(kwargs.get("fast_bias_correction", True)) is bool
    assert kwargs.get("preset") in (None, nncf.QuantizationPreset.PERFORMANCE)
    assert isinstance(kwargs.get("target_device", nncf.TargetDevice.ANY), nncf.TargetDevice)
    scope = kwargs.get("ignored_scope")
    if scope is not None:
        assert isinstance(scope, nncf.IgnoredScope)
        assert all(isinstance(name, str) for name in [*scope.names, *scope.patterns, *scope.types])
        for pattern in scope.patterns:
            re.compile(pattern)
    advanced = kwargs["advanced_parameters"]
    assert (
        isinstance(advanced, AdvancedQuantizationParameters) and advanced.overflow_fix is OverflowFix.DISABLE
    )
    assert advanced.smooth_quant_alpha is None or math.isfinite(advanced.smooth_quant_alpha)
    assert isinstance(advanced.backend_params, dict)
    capsnet = config.capsnet
    assert math.isfinite(capsnet.tolerance) and 0 <= capsnet.tolerance <= 100
    assert capsnet.method is None or isinstance(capsnet.method, str)
    assert all(
        type(getattr(capsnet, key)) is int for key in ("weight_bits", "activation_bits", "routing_bits")
    )


def _load_or_config_error(config) -> None:
    try:
        loaded = load_config(config)
    except ConfigError as error:
        assert "\n" not in str(error)
        return
    _assert_valid(loaded)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=_configs)
def test_arbitrary_values_give_a_config_error_or_a_valid_config(config):
    _load_or_config_error(config)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=_legacy_configs)
def test_arbitrary_legacy_values_give_a_config_error_or_a_valid_config(config):
    _load_or_config_error(config)
