"""The search criterion: lucky gains on the validation split earn no credit under "losses"."""

import pytest
import torch

from capsnet_nncf_plugin.allocation.evaluator import AccuracyEvaluator, EvaluationCost, Measurement
from capsnet_nncf_plugin.core import BitAllocation
from capsnet_nncf_plugin.data.image_dataset import ImageDataset

CLASSES = 3


class Predicts(torch.nn.Module):
    """Scores that pick ``classes[i]`` for the image whose pixels all equal ``i``."""

    def __init__(self, classes: list[int]) -> None:
        super().__init__()
        self.classes = torch.tensor(classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        index = images.flatten(1)[:, 0].long()
        return torch.nn.functional.one_hot(self.classes[index], CLASSES).float()


class StubEvaluator(AccuracyEvaluator):
    """Every allocation "quantizes" to the given classifier, so the criterion is tested alone."""

    def __init__(self, quantized: torch.nn.Module, **kwargs) -> None:
        self.quantized = quantized
        super().__init__(**kwargs)

    def quantize(self, allocation):
        return self.quantized


def stub(fp32: list[int], labels: list[int], quantized: list[int], criterion: str) -> StubEvaluator:
    """An evaluator of image ``i`` classed ``fp32[i]`` by the float model and ``quantized[i]`` by every
    allocation, labelled ``labels[i]``."""
    count = len(labels)
    images = torch.arange(count, dtype=torch.uint8).view(count, 1, 1, 1).expand(count, 1, 2, 2).contiguous()
    dataset = ImageDataset(images, torch.tensor(labels), name="synthetic", split="val", num_classes=CLASSES)
    return StubEvaluator(
        Predicts(quantized),
        model=Predicts(fp32),
        calibration_batches=[images.float()],
        validation_data=dataset,
        criterion=criterion,
        share=False,
    )


def evaluator(criterion: str) -> StubEvaluator:
    fp32 = [i % CLASSES for i in range(10)]
    labels = list(fp32)
    labels[0] = (fp32[0] + 1) % CLASSES  # FP32 is wrong on image 0
    quantized = list(fp32)
    quantized[0] = labels[0]  # the quantized model is right there by luck ...
    quantized[1] = (fp32[1] + 1) % CLASSES  # ... and loses image 1
    return stub(fp32, labels, quantized, criterion)


def test_a_lucky_gain_hides_a_loss_only_from_the_accuracy_criterion():
    allocation = BitAllocation.uniform(["layer"])
    by_accuracy, by_losses = evaluator("accuracy"), evaluator("losses")
    assert by_losses.fp32_accuracy == 90.0
    assert by_losses.measure(allocation) == Measurement(accuracy=90.0, lost=10.0, images=10)
    assert by_accuracy.holds(allocation, tolerance=5.0)
    assert not by_losses.holds(allocation, tolerance=5.0)
    assert by_losses.holds(allocation, tolerance=10.0)


def test_accuracy_margin_lets_the_validation_images_spend_half_the_tolerance():
    """10 images, one lost and one gained: 0 pp accuracy change. A quantized model losing 10 pp (one image)
    holds a 20 pp tolerance under accuracy-margin (10 <= 20 / 2) but not 15 pp (10 > 7.5), while plain
    accuracy accepts both."""
    allocation = BitAllocation.uniform(["layer"])
    fp32 = [i % CLASSES for i in range(10)]
    loses_one = list(fp32)
    loses_one[1] = (fp32[1] + 1) % CLASSES

    def judge(criterion: str) -> StubEvaluator:
        return stub(fp32, fp32, loses_one, criterion)

    assert judge("accuracy-margin").holds(allocation, tolerance=20.0)
    assert not judge("accuracy-margin").holds(allocation, tolerance=15.0)
    assert judge("accuracy").holds(allocation, tolerance=15.0) and judge("accuracy").holds(allocation, 10.0)
    assert not judge("accuracy-margin").holds(allocation, tolerance=10.0)


def test_unknown_criterion():
    with pytest.raises(ValueError, match="criterion must be one of losses, accuracy"):
        evaluator("top5")


def test_a_failing_allocation_stops_after_the_batches_that_settle_it():
    count = 40
    images = torch.arange(count, dtype=torch.uint8).view(count, 1, 1, 1).expand(count, 1, 2, 2).contiguous()
    labels = [i % CLASSES for i in range(count)]
    quantized = [(label + 1) % CLASSES if i < 4 else label for i, label in enumerate(labels)]
    dataset = ImageDataset(images, torch.tensor(labels), name="synthetic", split="val", num_classes=CLASSES)
    evaluation = StubEvaluator(
        Predicts(quantized),
        model=Predicts(labels),
        calibration_batches=[images.float()],
        validation_data=dataset,
        batch_size=2,
    )
    allocation = BitAllocation.uniform(["layer"])
    # 5 % of 40 images = 2 may be lost; the third loss (image 2, in the second batch) settles it.
    assert not evaluation.holds(allocation, tolerance=5.0)
    stopped = evaluation.cache[evaluation._key(allocation)]
    assert (stopped.images, stopped.complete) == (4, False)
    # A wider tolerance is not settled by the early stop: the allocation is measured again, in full.
    assert evaluation.holds(allocation, tolerance=10.0)
    assert evaluation.measure(allocation) == Measurement(accuracy=90.0, lost=10.0, images=40)
    assert evaluation.evaluations == 1
    # Where the time went: one run stopped after 4 images, one scored all 40, the cached answer free.
    cost = evaluation.cost
    assert (cost.complete, cost.stopped, cost.stopped_images) == (1, 1, 4)
    assert cost.complete_seconds > 0 and cost.stopped_seconds > 0 and cost.build_seconds >= 0
    assert cost.describe().startswith("1 scored on every image (0 s), 1 stopped early after 4 images in all")
    assert EvaluationCost(**cost.to_dict()) == cost


def test_measure_with_stop_beyond_stops_once_the_accuracy_surely_drops_that_far():
    """10 images, the quantized model wrong on the first three (FP32 right on all): 30 pp lost. Measured
    to 15 pp it stops after the first batch of two (2 wrong > the 1.5 allowed); to 40 pp it runs every
    image."""
    fp32 = [i % CLASSES for i in range(10)]
    quantized = [(c + 1) % CLASSES if i < 3 else c for i, c in enumerate(fp32)]
    evaluation = stub(fp32, fp32, quantized, "accuracy")
    evaluation.batch_size = 2
    allocation = BitAllocation.uniform(["layer"])
    stopped = evaluation.measure(allocation, stop_beyond=15.0)
    assert (stopped.complete, stopped.images) == (False, 2)
    assert evaluation.measure(allocation, stop_beyond=40.0) == Measurement(
        accuracy=70.0, lost=30.0, images=10
    )
