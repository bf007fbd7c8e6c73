import torch

from capsnet_nncf_plugin.training import Augmentation, margin_loss, reconstruction_loss


def test_margin_loss_values():
    lengths = torch.tensor([[0.95, 0.05, 0.3], [0.5, 0.2, 0.0]])
    labels = torch.tensor([0, 2])
    # Sample 0: only the absent 0.3 > 0.1 costs 0.5 * 0.2^2.
    # Sample 1: the present 0 costs 0.9^2; the absent 0.5 and 0.2 cost 0.5 * (0.4^2 + 0.1^2).
    expected = (0.5 * 0.2**2 + (0.9**2 + 0.5 * (0.4**2 + 0.1**2))) / 2
    torch.testing.assert_close(margin_loss(lengths, labels), torch.tensor(expected))
    assert margin_loss(torch.tensor([[0.9, 0.1]]), torch.tensor([0])).item() == 0.0


def test_reconstruction_loss_is_sum_of_squares_per_image():
    target = torch.zeros(2, 1, 2, 2)
    torch.testing.assert_close(reconstruction_loss(torch.full((2, 1, 2, 2), 0.5), target), torch.tensor(1.0))


def test_shift_moves_content_by_at_most_max_shift():
    images = torch.zeros(64, 1, 28, 28, dtype=torch.uint8)
    images[:, :, 13, 13] = 255
    shifted = Augmentation(max_shift=2)(images, torch.Generator().manual_seed(0))
    assert shifted.dtype == torch.uint8 and shifted.shape == images.shape
    positions = shifted[:, 0].flatten(1).argmax(dim=1)
    rows, cols = positions // 28, positions % 28
    assert rows.min() == 11 and rows.max() == 15 and cols.min() == 11 and cols.max() == 15
    assert (shifted.flatten(1).sum(dim=1) == 255).all()  # nothing duplicated or lost


def test_flip_and_recipes():
    images = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(2, 1, 3, 4).repeat(32, 1, 1, 1)
    flipped = Augmentation(horizontal_flip=True)(images, torch.Generator().manual_seed(0))
    is_flipped = (flipped == images.flip(-1)).flatten(1).all(dim=1)
    is_kept = (flipped == images).flatten(1).all(dim=1)
    assert (is_flipped | is_kept).all() and 10 < int(is_flipped.sum()) < 54
    assert Augmentation.for_dataset("mnist") == Augmentation(max_shift=2)
    assert Augmentation.for_dataset("cifar10").horizontal_flip
    assert not Augmentation.for_dataset("svhn").horizontal_flip
