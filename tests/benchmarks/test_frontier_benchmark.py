"""benchmarks/frontier.py: the frontier and the bounding points ignore points stopped early; a later run's
points join an entry of the same measurement."""

from benchmark_scripts import load_benchmark

frontier = load_benchmark("frontier.py")


def point(
    weights: float, activations: float, loss: float | None, thresholds=(0, 0), code: str | None = None
) -> "frontier.Point":
    accuracy = None if loss is None else 99.0 - loss
    stopped = 1.0 if loss is None else None
    return frontier.Point(
        *thresholds, weights, activations, 4.0, accuracy, loss, stopped_beyond=stopped, code=code
    )


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
        == "| 0 | 0 | 12.00 | 6.00 | 4.00 | stopped | > 1.00 | - | - | - |"
    )
    within = frontier.table_row(point(6.0, 5.0, 0.05))
    assert within == "| 0 | 0 | 6.00 | 5.00 | 4.00 | 98.95 | 0.05 | - | - | - |"


def test_the_validation_loss_of_a_point_is_shown_beside_its_test_loss():
    measured = point(8.3, 4.7, 0.10, code="9fe70131abcdef")
    measured.validation_loss, measured.validation_lost, measured.validation_images = 0.18, 0.22, 2000
    measured.validation_from = 512
    row = frontier.table_row(measured)
    assert row == "| 0 | 0 | 8.30 | 4.70 | 4.00 | 98.90 | 0.10 | 0.18 | 0.22 | 9fe70131abcd |"
    assert row.count("|") == frontier.TABLE_HEADER[0].count("|")
    assert frontier.validation_sentence([measured, point(6.0, 5.0, 0.05)]).endswith(
        "Validation: 2000 images from validation image 512."
    )
    assert frontier.validation_sentence([point(6.0, 5.0, 0.05)]) == ""


def entry(points: list[dict], code: str = "abc", fp32: float = 99.0) -> dict:
    return {
        "model": "zoo:m",
        "settings": "clip hardware",
        "fp32": fp32,
        "test_images": 10,
        "tolerance": 0.1,
        "weight_target": 8.0,
        "activation_target": 4.5,
        "code": code,
        "measured": "2026-12-07",
        "plot": "p.png",
        "points": points,
        "bounds": {"best_weights": None, "best_activations": None},
    }


OLD_POINT = {  # as entries kept it before points had validation losses and commits
    "weight_threshold": 21,
    "activation_threshold": 24,
    "weight_reduction": 9.0,
    "activation_reduction": 4.6,
    "routing_reduction": 4.0,
    "accuracy": 98.95,
    "loss": 0.05,
}


def test_entries_written_before_the_validation_columns_still_render_with_their_commit():
    text = frontier.markdown({"k": entry([OLD_POINT])}, "cmd")
    assert "| 21 | 24 | 9.00 | 4.60 | 4.00 | 98.95 | 0.05 | - | - | abc | * |" in text
    assert "test images; commit abc, 2026-12-07" in text


def test_a_later_run_adds_its_points_and_replaces_those_at_the_same_thresholds():
    old = entry([OLD_POINT, {**OLD_POINT, "activation_threshold": 27, "loss": 0.2, "accuracy": 98.8}])
    new = [point(9.0, 4.7, 0.08, thresholds=(21, 24), code="new"), point(8.0, 5.0, 0.3, (18, 21), "new")]
    merged = frontier.merged_points(old, entry([]), new)
    assert [(p.weight_threshold, p.activation_threshold, p.loss, p.code) for p in merged] == [
        (18, 21, 0.3, "new"),
        (21, 24, 0.08, "new"),
        (21, 27, 0.2, "abc"),
    ]
    text = frontier.markdown({"k": {**entry([frontier.dataclasses.asdict(p) for p in merged])}}, "cmd")
    assert "test images; commits abc, new, 2026-12-07" in text


def test_a_run_that_measured_something_else_replaces_the_entry():
    new = [point(9.0, 4.7, 0.08, thresholds=(21, 24), code="new")]
    assert frontier.merged_points(entry([OLD_POINT]), entry([], fp32=98.0), new) == new
    assert frontier.merged_points(None, entry([]), new) == new


def test_the_routing_stays_at_8_bits_unless_a_threshold_is_given():
    assert frontier.routing_threshold("none") is None and frontier.routing_threshold(" None ") is None
    assert frontier.routing_threshold("26") == 26.0
