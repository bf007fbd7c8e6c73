"""Both configuration layouts of the NNCF adapter: good ones become nncf objects, bad ones clear errors."""

import json

import nncf
import pytest
from nncf.quantization.advanced_parameters import OverflowFix
from nncf.quantization.range_estimator import StatisticsType

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
