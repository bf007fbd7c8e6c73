"""Batched accuracy of any classifier (float, fake-quantized or integer) on a labelled image dataset."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

#: Images per forward pass. Integer routing is memory-bound on ``[N, I, J, D]`` votes: 100 keeps them in
#: cache-friendly sizes (500 is about 1.5x slower per image on ShallowCaps); float models do not care.
EVALUATION_BATCH = 100


def iterate_batches(
    dataset: Dataset, batch_size: int, limit: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yields ``(float images, int64 labels)`` in order; fast path for datasets holding tensors.

    A dataset with ``images`` (uint8 ``[N, C, H, W]``) and ``labels`` attributes is sliced directly, which
    is an order of magnitude faster than item-by-item collation.
    """
    count = len(dataset) if limit is None else min(limit, len(dataset))
    images = getattr(dataset, "images", None)
    labels = getattr(dataset, "labels", None)
    if isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor):
        for start in range(0, count, batch_size):
            stop = min(start + batch_size, count)
            yield images[start:stop].to(torch.float32), labels[start:stop]
        return
    seen = 0
    for batch_images, batch_labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        take = min(len(batch_labels), count - seen)
        yield batch_images[:take].to(torch.float32), torch.as_tensor(batch_labels[:take])
        seen += take
        if seen >= count:
            return


@torch.no_grad()
def predict(
    model: Callable[[torch.Tensor], torch.Tensor],
    dataset: Dataset,
    batch_size: int = EVALUATION_BATCH,
    limit: int | None = None,
    progress: bool = False,
    description: str = "eval",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-1 classes of ``model`` (images -> class scores) and the labels, over the first ``limit`` items."""
    if isinstance(model, torch.nn.Module):
        model.eval()
    count = len(dataset) if limit is None else min(limit, len(dataset))
    if count == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    predictions, all_labels = [], []
    with tqdm(total=count, desc=description, unit="img", disable=not progress, leave=False) as bar:
        for images, labels in iterate_batches(dataset, batch_size, count):
            predictions.append(model(images).argmax(dim=1))
            all_labels.append(labels)
            bar.update(len(labels))
    return torch.cat(predictions), torch.cat(all_labels)


def accuracy_of(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * int((predictions == labels).sum()) / len(labels)


def evaluate_accuracy(
    model: Callable[[torch.Tensor], torch.Tensor],
    dataset: Dataset,
    batch_size: int = EVALUATION_BATCH,
    limit: int | None = None,
    progress: bool = False,
    description: str = "eval",
) -> float:
    """Top-1 accuracy in percent of ``model`` (images -> class scores) over the first ``limit`` items."""
    return accuracy_of(*predict(model, dataset, batch_size, limit, progress, description))


@dataclass(frozen=True)
class Agreement:
    """How a deployed classifier (``candidate``) agrees with its reference on a dataset."""

    images: int
    reference_accuracy: float
    candidate_accuracy: float
    identical_outputs: float  # percent of images whose score vectors are equal bit for bit
    same_top1: float  # percent of images with the same predicted class
    max_abs_difference: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@torch.no_grad()
def compare_classifiers(
    reference: Callable[[torch.Tensor], torch.Tensor],
    candidate: Callable[[torch.Tensor], torch.Tensor],
    dataset: Dataset,
    batch_size: int = EVALUATION_BATCH,
    limit: int | None = None,
    progress: bool = False,
    description: str = "compare",
) -> Agreement:
    """Both classifiers on the same batches: their accuracies and how exactly their scores agree."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    if count == 0:
        raise ValueError("cannot compare on an empty dataset")
    correct = [0, 0]
    identical = same_top1 = 0
    max_difference = 0.0
    with tqdm(total=count, desc=description, unit="img", disable=not progress, leave=False) as bar:
        for images, labels in iterate_batches(dataset, batch_size, count):
            expected, actual = reference(images), candidate(images)
            if expected.shape != actual.shape:
                raise ValueError(f"scores differ in shape: {tuple(expected.shape)} vs {tuple(actual.shape)}")
            correct[0] += int((expected.argmax(dim=1) == labels).sum())
            correct[1] += int((actual.argmax(dim=1) == labels).sum())
            identical += int((expected == actual).all(dim=1).sum())
            same_top1 += int((expected.argmax(dim=1) == actual.argmax(dim=1)).sum())
            max_difference = max(max_difference, float((expected - actual).abs().max()))
            bar.update(len(labels))
    return Agreement(
        count,
        100.0 * correct[0] / count,
        100.0 * correct[1] / count,
        100.0 * identical / count,
        100.0 * same_top1 / count,
        max_difference,
    )
