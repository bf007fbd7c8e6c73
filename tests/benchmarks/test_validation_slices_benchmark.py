"""benchmarks/validation_slices.py: the slices a run's images split into, and an allocation against FP32."""

import pytest
import torch
from benchmark_scripts import load_benchmark

from capsnet_nncf_plugin.errors import ConfigError

slices = load_benchmark("validation_slices.py")


def test_the_default_slices_are_the_calibration_the_search_and_the_rest():
    assert slices.default_slices(512, 2000, 5000) == [(0, 512), (512, 2512), (2512, 5000)]
    # Every image after the calibration's searched: nothing is left over.
    assert slices.default_slices(512, None, 5000) == [(0, 512), (512, 5000)]
    assert slices.default_slices(512, 9000, 5000) == [(0, 512), (512, 5000)]


@pytest.mark.parametrize(
    ("text", "expected"), [("512:2512", (512, 2512)), ("2512:", (2512, 5000)), ("0:1", (0, 1))]
)
def test_a_slice_reads_start_and_stop(text, expected):
    assert slices.parse_slice(text, 5000) == expected


@pytest.mark.parametrize("text", ["512", "a:b", "2512:512", "0:5001", "-1:10", "7:7"])
def test_a_bad_slice_is_refused_with_the_form_it_takes(text):
    with pytest.raises(ConfigError, match="--slice") as refused:
        slices.parse_slice(text, 5000)
    assert "START" in str(refused.value) and "\n" not in str(refused.value)


def test_losses_and_gains_are_counted_against_fp32():
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    fp32 = torch.tensor([0, 1, 2, 3, 4, 5, 0, 0])  # right on the first six
    quantized = torch.tensor([0, 1, 2, 0, 0, 5, 6, 0])  # loses two of them, gains one
    result = slices.compare_on("validation 0-7", fp32, quantized, labels)
    assert (result.images, result.lost, result.gained) == (8, 2, 1)
    assert result.loss_pp == pytest.approx(100 * (6 - 5) / 8)
    row = slices.table({"a.json": [result]}).splitlines()[-1]
    assert row == "| a.json | validation 0-7 (8) | 12.50 | 2 | 1 |"
