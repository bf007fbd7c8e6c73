"""FloatClassifier: FP32 passes through onnxruntime whose classes are torch's; torch where it cannot."""

import logging

import torch
from tiny_capsnet import tiny_capsnet, tiny_images

from capsnet_nncf_plugin.allocation.float_reference import AGREEMENT, NEAR_TIE, FloatClassifier


def test_the_classes_are_torchs_and_onnxruntime_runs_the_full_batches():
    model = tiny_capsnet()
    images = tiny_images(80, seed=5)
    classifier = FloatClassifier(model, batch_size=32)
    with torch.no_grad():
        reference = model(images)
    scores = torch.cat([classifier(images[start : start + 32]) for start in range(0, 80, 32)])
    assert classifier.runtime == "onnxruntime"
    assert torch.equal(scores.argmax(dim=1), reference.argmax(dim=1))
    assert float((scores - reference).abs().max()) <= AGREEMENT
    # The last, partial batch (16 images) is not the exported shape: torch's scores, bit for bit.
    assert torch.equal(scores[64:], reference[64:])
    assert not torch.equal(scores[:64], reference[:64])  # the full batches did run elsewhere


class _Ties(torch.nn.Module):
    """Class scores whose top two tie exactly on the images with a dark first pixel; records the images
    torch scores."""

    def __init__(self) -> None:
        super().__init__()
        self.scored: list[int] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.scored.append(len(images))
        first = images.flatten(1).mean(dim=1, keepdim=True)
        bright = (images.flatten(1)[:, :1] > 128).to(images.dtype)
        second = first + bright * 0.5  # bright images: class 1 wins clearly
        return torch.cat([first, second, first - 1], dim=1) * 1.0001


def test_images_whose_top_two_nearly_tie_are_scored_by_torch_again():
    model = _Ties()
    images = tiny_images(16, seed=6)
    classifier = FloatClassifier(model, batch_size=16)
    scores = classifier(images)
    with torch.no_grad():
        reference = model(images)
    assert classifier.runtime == "onnxruntime"
    top = reference.topk(2, dim=1).values
    near = (top[:, 0] - top[:, 1]) < NEAR_TIE
    assert near.any() and not near.all()
    # Torch scored the first batch (the agreement check), then the near ties alone.
    assert model.scored[-3:] == [16, int(near.sum()), 16]  # the last one: `reference` above
    assert torch.equal(scores[near], reference[near])
    assert torch.equal(scores.argmax(dim=1), reference.argmax(dim=1))


class _Unexportable(torch.nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(images.flatten(1)[:, :3].numpy().copy())  # leaves the graph: no export


class _Random(torch.nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)[:, :3] + torch.rand(len(images), 3)  # two runs never agree


def test_a_model_that_does_not_export_or_disagrees_runs_in_torch_with_a_log_line(caplog):
    images = tiny_images(4, seed=7)
    for model, reason in (
        (_Unexportable(), "does not run in onnxruntime"),
        (_Random(), "differ from torch's"),
    ):
        classifier = FloatClassifier(model, batch_size=4)
        with caplog.at_level(logging.INFO, logger="capsnet_nncf_plugin.allocation.float_reference"):
            caplog.clear()
            classifier(images)
            second = classifier(images)
        assert classifier.runtime == "torch" and classifier.session is None
        assert [reason in record.getMessage() for record in caplog.records] == [True]  # said once
        if isinstance(model, _Unexportable):
            assert torch.equal(second, model(images))
