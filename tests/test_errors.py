"""capsnet_nncf_plugin.errors: how command-line entry points report a user's mistake."""

import pytest

from capsnet_nncf_plugin.errors import CheckpointError, run_reporting_user_errors


def test_a_user_error_becomes_one_line_and_status_2(capsys):
    def main():
        raise CheckpointError("checkpoint x.pt does not exist; train one with `capsq train`")

    assert run_reporting_user_errors(main, "tool.py") == 2
    captured = capsys.readouterr()
    assert captured.err == "tool.py: error: checkpoint x.pt does not exist; train one with `capsq train`\n"
    assert captured.out == ""


def test_the_status_of_main_passes_through():
    assert run_reporting_user_errors(lambda: None, "tool.py") == 0
    assert run_reporting_user_errors(lambda: 1, "tool.py") == 1


def test_a_bug_keeps_its_traceback():
    def main():
        raise KeyError("internal")

    with pytest.raises(KeyError):
        run_reporting_user_errors(main, "tool.py")
