"""Out-of-range option values are usage errors that name the option, before any model or data is loaded."""

import argparse

import pytest

from capsnet_nncf_plugin.cli import main
from capsnet_nncf_plugin.cli.arguments import bit_width, non_negative_float, positive_float, positive_int


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (bit_width, "2", 2),
        (bit_width, "16", 16),
        (positive_int, "1", 1),
        (positive_float, "0.5", 0.5),
        (non_negative_float, "0", 0.0),
        (non_negative_float, "0.1", 0.1),
    ],
)
def test_values_in_range_parse(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (bit_width, "1"),
        (bit_width, "17"),
        (bit_width, "8.0"),
        (positive_int, "0"),
        (positive_int, "-3"),
        (positive_int, "ten"),
        (positive_float, "0"),
        (positive_float, "inf"),
        (non_negative_float, "-1"),
        (non_negative_float, "nan"),
    ],
)
def test_values_out_of_range_are_refused(parse, text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"expected .*got {text!r}"):
        parse(text)


@pytest.mark.parametrize(
    ("arguments", "option", "expected"),
    [
        (["run", "--tolerance", "-1"], "--tolerance", "a number >= 0"),
        (["run", "--weight-bits", "1"], "--weight-bits", "a bit-width in 2..16"),
        (["run", "--calibration", "0"], "--calibration", "a positive integer"),
        (["quantize", "--tolerance", "nan"], "--tolerance", "a number >= 0"),
        (["quantize", "--analysis-bits", "8", "20"], "--analysis-bits", "a bit-width in 2..16"),
        (["quantize", "--weight-memory-budget", "0"], "--weight-memory-budget", "a number > 0"),
        (["eval", "--model", "zoo:shallowcaps-mnist", "--limit", "0"], "--limit", "a positive integer"),
        (["train", "--epochs", "0"], "--epochs", "a positive integer"),
        (["train", "--lr", "-0.001"], "--lr", "a number > 0"),
    ],
)
def test_the_commands_refuse_an_out_of_range_option_at_once(arguments, option, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {option}: expected {expected}" in error
