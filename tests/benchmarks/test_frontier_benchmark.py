"""benchmarks/frontier.py: the frontier and the bounding points ignore points stopped early."""

from benchmark_scripts import load_benchmark

frontier = load_benchmark("frontier.py")


def point(weights: float, activations: float, loss: float | None) -> "frontier.Point":
    accuracy = None if loss is None else 99.0 - loss
    stopped = 1.0 if loss is None else None
    return frontier.Point(0, 0, weights, activations, 4.0, accuracy, loss, stopped_beyond=stopped)


def test_pareto_and_bounds_keep_measured_points_within_the_tolerance():
    points = [
        point(6.0, 5.0, 0.05),
        point(8.5, 4.2, 0.10),
        point(7.0, 4.6, 0.02),
        point(5.0, 4.4, 0.00),  # beaten by (6.0, 5.0)
        point(12.0, 6.0, None),  # stopped: surely beyond 1 pp
        point(9.0, 4.8, 0.30),
    ]
    front = frontier.pareto(points, 0.1)
    assert [(p.weight_reduction, p.activation_reduction) for p in front] == [
        (6.0, 5.0),
        (7.0, 4.6),
        (8.5, 4.2),
    ]
    bounds = frontier.bounding_points(points, 0.1, weight_target=8.0, activation_target=4.5)
    assert bounds["best_weights"].weight_reduction == 7.0
    assert bounds["best_activations"].activation_reduction == 4.2
    assert frontier.bounding_points(points[4:], 0.1, 8.0, 4.5) == {
        "best_weights": None,
        "best_activations": None,
    }


def test_a_stopped_point_is_shown_as_stopped_beyond_its_limit():
    assert (
        frontier.table_row(point(12.0, 6.0, None))
        == "| 0 | 0 | 12.00 | 6.00 | 4.00 | stopped | > 1.00 | - | - |"
    )
    within = frontier.table_row(point(6.0, 5.0, 0.05))
    assert within == "| 0 | 0 | 6.00 | 5.00 | 4.00 | 98.95 | 0.05 | - | - |"


def test_the_validation_loss_of_a_point_is_shown_beside_its_test_loss():
    measured = point(8.3, 4.7, 0.10)
    measured.validation_loss, measured.validation_lost, measured.validation_images = 0.18, 0.22, 5000
    row = frontier.table_row(measured)
    assert row == "| 0 | 0 | 8.30 | 4.70 | 4.00 | 98.90 | 0.10 | 0.18 | 0.22 |"
    assert row.count("|") == frontier.TABLE_HEADER[0].count("|")
    assert frontier.validation_sentence([measured, point(6.0, 5.0, 0.05)]).endswith(
        "the first 5000 images of the validation split."
    )
    assert frontier.validation_sentence([point(6.0, 5.0, 0.05)]) == ""


def test_entries_written_before_the_validation_columns_still_render():
    entry = {
        "model": "zoo:m",
        "settings": "clip hardware",
        "fp32": 99.0,
        "test_images": 10,
        "tolerance": 0.1,
        "weight_target": 8.0,
        "activation_target": 4.5,
        "code": "abc",
        "measured": "2026-12-07",
        "plot": "p.png",
        "points": [
            {
                "weight_threshold": 21,
                "activation_threshold": 24,
                "weight_reduction": 9.0,
                "activation_reduction": 4.6,
                "routing_reduction": 4.0,
                "accuracy": 98.95,
                "loss": 0.05,
            }
        ],
        "bounds": {"best_weights": None, "best_activations": None},
    }
    text = frontier.markdown({"k": entry}, "cmd")
    assert "| 21 | 24 | 9.00 | 4.60 | 4.00 | 98.95 | 0.05 | - | - | * |" in text


def test_the_routing_stays_at_8_bits_unless_a_threshold_is_given():
    assert frontier.routing_threshold("none") is None and frontier.routing_threshold(" None ") is None
    assert frontier.routing_threshold("26") == 26.0
