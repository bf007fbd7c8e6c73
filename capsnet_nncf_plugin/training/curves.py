"""Training curves: loss and accuracy per epoch, drawn from a run's history (``history.json``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from capsnet_nncf_plugin.figures import pyplot, save_png

#: The figure ``capsq train`` refreshes in its run directory after every epoch.
CURVES = "curves.png"


def plot_training_curves(path: Path, history: Sequence[dict[str, Any]], title: str = "") -> None:
    """Two panels: training loss (log scale); train and validation accuracy, the best epoch marked.

    ``history`` holds one record per epoch with ``epoch``, ``train_loss``, ``train_accuracy`` and
    ``val_accuracy``, as :func:`~capsnet_nncf_plugin.training.train` writes them.
    """
    if not history:
        raise ValueError("no epochs to draw: the history is empty")
    plt = pyplot()
    epochs = [record["epoch"] for record in history]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 3.8))
    loss_axes.plot(epochs, [record["train_loss"] for record in history], marker="o")
    loss_axes.set_yscale("log")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("training loss")
    validation = [record["val_accuracy"] for record in history]
    accuracy_axes.plot(epochs, [record["train_accuracy"] for record in history], marker="o", label="train")
    accuracy_axes.plot(epochs, validation, marker="o", label="validation")
    best = max(range(len(history)), key=validation.__getitem__)
    accuracy_axes.annotate(
        f"best {validation[best]:.2f} %",
        (epochs[best], validation[best]),
        textcoords="offset points",
        xytext=(0, -16),
        ha="center",
        fontsize=8,
    )
    # The first epoch's training accuracy is far below the rest; the interesting range is near the top.
    low = min(min(validation), history[-1]["train_accuracy"])
    accuracy_axes.set_ylim(max(0.0, low - 2.0), 100.0)
    accuracy_axes.set_xlabel("epoch")
    accuracy_axes.set_ylabel("accuracy (%)")
    accuracy_axes.legend()
    for axes in (loss_axes, accuracy_axes):
        axes.grid(alpha=0.3)
        axes.set_xticks(epochs)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    save_png(figure, path)
