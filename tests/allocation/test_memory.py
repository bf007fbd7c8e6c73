import pytest
import torch

from capsnet_nncf_plugin.allocation import memory_report
from capsnet_nncf_plugin.quantized import QuantizationPoint


def test_worked_example():
    # A float model with 100 + 10 parameters: the 100 weights quantized to 4 bits, the 10 biases stay FP32.
    model = torch.nn.Linear(10, 10)
    points = [
        QuantizationPoint("fc.weight", "weight", 4, True, -3, 100),
        QuantizationPoint("fc.input", "activation", 8, False, -8, 10),
        QuantizationPoint("fc.output", "activation", 6, True, -2, 10),
        QuantizationPoint("r.c[0]", "routing", 5, False, -5, 40),
    ]
    report = memory_report(points, model)
    assert report.weight_bits == 100 * 4 + 10 * 32 and report.weight_bits_fp32 == 110 * 32
    assert report.weight_reduction == pytest.approx(3520 / 720)
    assert report.activation_bits == 80 + 60 and report.activation_bits_fp32 == 20 * 32
    assert report.peak_activation_bits == 80 and report.peak_activation_bits_fp32 == 320
    assert report.routing_bits == 200 and report.routing_reduction == pytest.approx(32 / 5)
    assert report.as_dict()["activation_reduction"] == pytest.approx(640 / 140)


def test_points_from_another_model_are_refused():
    with pytest.raises(ValueError, match="pass the float model"):
        memory_report([QuantizationPoint("w", "weight", 8, True, 0, 1000)], torch.nn.Linear(2, 2))
