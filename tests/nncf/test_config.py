"""Both configuration layouts of the NNCF adapter: good ones become nncf objects, bad ones clear errors."""

import json
import math
import re

import nncf
import pytest
from hostile_inputs import (
    BAD_NNCF_CONFIGS,
    LEGACY_IGNORED_SCOPE_STRING_NNCF_CONFIG,
    LEGACY_LAYOUT_NNCF_CONFIG,
    QUANTIZE_LAYOUT_NNCF_CONFIG,
    WRONGLY_TYPED_NNCF_CONFIGS,
    nncf_legacy_layout_configs,
    nncf_quantize_keys,
    nncf_quantize_layout_configs,
)
from hypothesis import HealthCheck, given, settings
from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
from nncf.quantization.range_estimator import StatisticsType

from capsnet_nncf_plugin.errors import CapsqError, run_reporting_user_errors
from capsnet_nncf_plugin.nncf import CapsnetSection, ConfigError, load_config


def test_quantize_layout_becomes_nncf_objects():
    config = load_config(QUANTIZE_LAYOUT_NNCF_CONFIG)
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
    config = load_config(LEGACY_LAYOUT_NNCF_CONFIG)
    assert config.layout == "nncf-2.x"
    assert config.quantize_kwargs["subset_size"] == 128
    assert config.quantize_kwargs["target_device"] is nncf.TargetDevice.CPU
    assert config.quantize_kwargs["ignored_scope"] == nncf.IgnoredScope(
        names=["conv1/conv2d/0"], patterns=[".*routing.*"]
    )
    assert config.capsnet == CapsnetSection(
        clip="percentile", weight_bits=6, activation_bits=7, routing_bits=6
    )


@pytest.mark.parametrize(("config", "message"), BAD_NNCF_CONFIGS)
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


@pytest.mark.parametrize(("config", "expected"), WRONGLY_TYPED_NNCF_CONFIGS)
def test_wrongly_typed_values_name_the_key(config, expected):
    assert expected in _config_error(config)


def test_a_legacy_ignored_scope_string_is_one_name_not_its_characters():
    config = load_config(LEGACY_IGNORED_SCOPE_STRING_NNCF_CONFIG)
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

_QUANTIZE_KEYS = nncf_quantize_keys()


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
@given(config=nncf_quantize_layout_configs())
def test_arbitrary_values_give_a_config_error_or_a_valid_config(config):
    _load_or_config_error(config)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=nncf_legacy_layout_configs())
def test_arbitrary_legacy_values_give_a_config_error_or_a_valid_config(config):
    _load_or_config_error(config)
