"""report.md's line on where the search's evaluations spent their time."""

import pytest

from capsnet_nncf_plugin.allocation.evaluator import EvaluationCost
from capsnet_nncf_plugin.allocation.report import recorded_cost

COST = EvaluationCost(complete=3, complete_seconds=40.5, stopped=5, stopped_seconds=2.0, stopped_images=500)


def test_the_recorded_cost_reads_back_and_describes_itself():
    cost = recorded_cost({"evaluation_cost": COST.to_dict()})
    assert cost == COST
    assert cost.describe() == (
        "3 scored on every image (40 s), 5 stopped early after 500 images in all (2 s), building them 0 s"
    )


@pytest.mark.parametrize(
    "info",
    [
        {},  # a search from before the cost was recorded
        {"evaluation_cost": "fast"},
        {"evaluation_cost": {**COST.to_dict(), "unknown": 1}},
        {"evaluation_cost": {key: value for key, value in COST.to_dict().items() if key != "stopped"}},
        {"evaluation_cost": {**COST.to_dict(), "complete": "three"}},
    ],
)
def test_an_allocation_without_a_cost_in_this_form_gets_no_line(info):
    assert recorded_cost(info) is None
