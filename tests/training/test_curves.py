"""The training-curves figure of ``capsq train``."""

import pytest

from capsnet_nncf_plugin.training import plot_training_curves

HISTORY = [
    {"epoch": 1, "train_loss": 0.21, "train_accuracy": 78.7, "val_accuracy": 97.2},
    {"epoch": 2, "train_loss": 0.049, "train_accuracy": 97.1, "val_accuracy": 98.6},
    {"epoch": 3, "train_loss": 0.038, "train_accuracy": 98.2, "val_accuracy": 98.9},
]


def test_the_curves_are_a_png_and_no_temporary_file_is_left(tmp_path):
    path = tmp_path / "curves.png"
    plot_training_curves(path, HISTORY, title="deepcaps on mnist")
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_the_curves_replace_the_previous_epochs_figure(tmp_path):
    path = tmp_path / "curves.png"
    plot_training_curves(path, HISTORY[:1])
    one_epoch = path.read_bytes()
    plot_training_curves(path, HISTORY)
    assert path.read_bytes() != one_epoch


def test_an_empty_history_is_refused(tmp_path):
    with pytest.raises(ValueError, match="history is empty"):
        plot_training_curves(tmp_path / "curves.png", [])
    assert not (tmp_path / "curves.png").exists()
