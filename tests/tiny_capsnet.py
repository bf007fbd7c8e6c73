"""Miniature ShallowCaps and DeepCaps shared by the tests (``tests`` is on pytest's pythonpath)."""

import torch
from torch import nn

from capsnet_nncf_plugin.models.deepcaps import CapsCell
from capsnet_nncf_plugin.nn import CapsuleLength, ClassCapsules, PrimaryCapsules, flatten_capsules


class TinyCapsNet(nn.Module):
    """ShallowCaps in miniature: conv + ReLU, primary capsules, class capsules with 3 routing iterations."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 5)
        self.relu = nn.ReLU()
        self.primary = PrimaryCapsules(16, num_capsules=4, capsule_dim=4, kernel_size=5, stride=2)
        self.classes = ClassCapsules(4 * 4 * 4, 3, in_dim=4, out_dim=6, iterations=3)
        self.length = CapsuleLength()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.length(self.classes(self.primary(self.relu(self.conv(images * 2.0**-8)))))


def tiny_capsnet(seed: int = 0) -> TinyCapsNet:
    torch.manual_seed(seed)
    model = TinyCapsNet().eval()
    with torch.no_grad():  # larger vote weights than the default init, so capsules are not all tiny
        model.classes.votes.weight.mul_(30)
    return model


def tiny_images(count: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 256, (count, 1, 16, 16), generator=torch.Generator().manual_seed(seed)).float()


class TinyDeepCaps(nn.Module):
    """DeepCaps in miniature: conv + ReLU, one cell of four capsule layers (3D routing in its skip branch),
    class capsules: a block of several layers and two routing layers."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.cell = CapsCell(1, 8, 2, 4, routed_skip=True, routing_iterations=3)
        self.classes = ClassCapsules(2 * 8 * 8, 3, in_dim=4, out_dim=6, iterations=3)
        self.length = CapsuleLength()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        capsules = self.cell(self.relu(self.stem(images * 2.0**-8)).unsqueeze(1))
        return self.length(self.classes(flatten_capsules(capsules)))


def tiny_deepcaps(seed: int = 0) -> TinyDeepCaps:
    torch.manual_seed(seed)
    model = TinyDeepCaps().eval()
    with torch.no_grad():  # as in tiny_capsnet: class capsules long enough to be told apart
        model.classes.votes.weight.mul_(30)
    return model
