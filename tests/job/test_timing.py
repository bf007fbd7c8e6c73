import logging
import time

import pytest

from capsnet_nncf_plugin.job.timing import PhaseTimer


def test_phases_are_timed_in_order_and_a_repeated_phase_adds_up(caplog):
    timer = PhaseTimer()
    with caplog.at_level(logging.INFO, logger="capsnet_nncf_plugin.job.timing"):
        with timer.phase("error_analysis"):
            time.sleep(0.02)
        with timer.phase("fp32_test"):
            pass
        with timer.phase("error_analysis"):
            time.sleep(0.02)
    assert list(timer.seconds) == ["error_analysis", "fp32_test"]
    assert timer.seconds["error_analysis"] >= 0.04
    assert timer.seconds["fp32_test"] < timer.seconds["error_analysis"]
    assert "error analysis:" in caplog.text
    total = sum(timer.seconds.values())
    assert timer.describe() == (
        f"{total:.0f} s: error analysis {timer.seconds['error_analysis']:.0f} s, "
        f"fp32 test {timer.seconds['fp32_test']:.0f} s"
    )


def test_a_phase_that_raises_is_not_recorded():
    timer = PhaseTimer()
    with pytest.raises(RuntimeError), timer.phase("search:error-guided"):
        raise RuntimeError("interrupted")
    assert timer.seconds == {}
