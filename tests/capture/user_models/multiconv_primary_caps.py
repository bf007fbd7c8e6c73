"""CapsNet whose primary capsules come from 8 separate convs, with the capsule dimension NOT last.

Variants used:

- input scaling: ``x / 255``
- primary capsules: an ``nn.ModuleList`` of 8 ``nn.Conv2d`` (16 -> 4 channels, k9 s2), one per capsule
  dimension, ``torch.stack([conv(x) for conv in self.capsules], dim=1)`` -> ``view(N, 8, -1)``, giving
  ``u [N, D, I]`` (capsule dimension at dim 1), squash over ``dim=1``
- squash form: ``norm ** 2 / (1 + norm ** 2) / (norm + eps) * s``
- norm form: ``torch.sqrt((s * s).sum(dim=dim, keepdim=True))``
- eps placement: outside the sqrt, added to the norm (1e-7)
- vote form: ``torch.einsum("jiod,ndi->njio", W, u)`` with ``W [J, I, D_out, D_in]``, votes laid out
  ``[N, J, I, D_out]``
- routing iterations: 3
- logits init: ``torch.zeros(x.size(0), J, I, device=x.device)`` (batch size read from the model input),
  logits laid out ``[N, J, I]``
- detach: none
- softmax form: ``F.softmax(b, dim=1)`` (dim 1 of ``b [N, J, I]`` is the output capsules)
- weighted sum: ``(c.unsqueeze(-1) * u_hat).sum(dim=2)`` -> ``s [N, J, D]``, squash over ``dim=2``
  (a positive index, where the other models write -1)
- agreement: ``b = b + (u_hat * v.unsqueeze(2)).sum(-1)``
- length form: ``v.norm(dim=-1)``
"""

import torch
import torch.nn.functional as F
from torch import nn


def squash(s, dim):
    norm = torch.sqrt((s * s).sum(dim=dim, keepdim=True))
    return norm**2 / (1 + norm**2) / (norm + 1e-7) * s


class MultiConvPrimaryCapsNet(nn.Module):
    def __init__(self, num_classes=10, capsule_dim=8, channels_per_dim=4, class_dim=8):
        super().__init__()
        self.num_routes = channels_per_dim * 6 * 6
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(1, 16, kernel_size=9, stride=1)
        self.capsules = nn.ModuleList(
            [nn.Conv2d(16, channels_per_dim, kernel_size=9, stride=2) for _ in range(capsule_dim)]
        )
        self.route_weights = nn.Parameter(
            0.05 * torch.randn(num_classes, self.num_routes, class_dim, capsule_dim)
        )

    def forward(self, x):
        out = F.relu(self.conv1(x / 255))
        u = torch.stack([conv(out) for conv in self.capsules], dim=1)  # [N, D, C, H, W]
        u = u.view(x.size(0), len(self.capsules), -1)  # [N, D, I]
        u = squash(u, dim=1)

        u_hat = torch.einsum("jiod,ndi->njio", self.route_weights, u)  # [N, J, I, D]

        b = torch.zeros(x.size(0), self.num_classes, self.num_routes, device=x.device)
        for i in range(3):
            c = F.softmax(b, dim=1)
            s = (c.unsqueeze(-1) * u_hat).sum(dim=2)  # [N, J, D]
            v = squash(s, dim=2)
            if i < 2:
                b = b + (u_hat * v.unsqueeze(2)).sum(-1)
        return v.norm(dim=-1)


def factory():
    return MultiConvPrimaryCapsNet()
