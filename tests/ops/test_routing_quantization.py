"""RoutingQuantization: validation names the bad field, and the dict form round-trips through JSON."""

import json

import pytest

from capsnet_nncf_plugin.ops import RoutingQuantization


def three_iterations(**changes):
    fields = {
        "iterations": 3,
        "votes_exponent": -7,
        "votes_bits": 8,
        "coupling_bits": [8, 8, 8],
        "pre_exponents": [-4, -3, -3],
        "pre_bits": [8, 8, 8],
        "out_bits": [8, 8, 8],
        "logit_exponents": [-8, -7],
        "logit_bits": [8, 8],
    }
    fields.update(changes)
    return fields


def test_json_round_trip_and_normalised_tuples():
    params = RoutingQuantization(**three_iterations())
    assert params.coupling_bits == (8, 8, 8)
    restored = RoutingQuantization.from_dict(json.loads(json.dumps(params.to_dict())))
    assert restored == params
    assert hash(restored) == hash(params)
    assert params.output_bits == 8
    assert params.output_exponent == -7


def test_op_arguments_follow_the_field_order():
    params = RoutingQuantization(**three_iterations())
    assert params.as_op_arguments() == (
        3,
        -7,
        8,
        [8, 8, 8],
        [-4, -3, -3],
        [8, 8, 8],
        [8, 8, 8],
        [-8, -7],
        [8, 8],
    )


def test_single_iteration_needs_no_logit_formats():
    params = RoutingQuantization(1, -7, 8, (8,), (-4,), (8,), (16,))
    assert params.logit_exponents == () and params.output_exponent == -15


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iterations": 0}, "iterations must be in 1..16"),
        ({"iterations": True}, "iterations must be an int"),
        ({"votes_bits": 17}, "votes_bits must be an integer in 2..16"),
        ({"votes_exponent": 7}, "votes_exponent=7 is outside"),
        ({"coupling_bits": [8, 8]}, "coupling_bits has 2 entries but iterations=3 needs 3"),
        ({"logit_bits": [8, 8, 8]}, "logit_bits has 3 entries but iterations=3 needs 2"),
        ({"pre_bits": [8, 1, 8]}, r"pre_bits\[1\] must be an integer in 2..16"),
        ({"pre_exponents": [-4, -3, -40]}, r"pre_exponents\[2\]=-40 is outside"),
        ({"logit_exponents": [-8, 2.0]}, "logit_exponents must contain ints only"),
        ({"out_bits": "888"}, "out_bits must be a sequence of ints"),
    ],
)
def test_validation_names_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        RoutingQuantization(**three_iterations(**changes))


def test_from_dict_names_missing_and_unknown_keys():
    data = three_iterations()
    del data["out_bits"]
    data["coupling_exponents"] = [-8, -8, -8]
    with pytest.raises(
        ValueError, match=r"missing \['out_bits'\] and has unknown keys \['coupling_exponents'\]"
    ):
        RoutingQuantization.from_dict(data)
