"""CapsNet with einsum vote transforms and the textbook three-iteration dynamic routing.

Variants used:

- input scaling: ``x / 255.0``
- primary capsules: one conv (24 -> 4 types x 8D, k9 s2), ``view(N, types, D, H, W)`` ->
  ``permute(0, 1, 3, 4, 2)`` -> ``reshape(N, -1, D)``, squash over the last dim
- squash form: ``s * n2 / (1 + n2) / torch.sqrt(n2 + eps)``
- norm form: ``n2 = (s ** 2).sum(dim=-1, keepdim=True)``
- eps placement: inside the sqrt (1e-8)
- vote form: ``torch.einsum("ijdk,nik->nijd", W, u)`` with ``W [I, J, D_out, D_in]``
- routing iterations: 3
- logits init: ``torch.zeros(x.size(0), I, J)`` (batch size read from the model input)
- detach: none
- softmax form: ``F.softmax(b, dim=2)``
- weighted sum: ``(c.unsqueeze(-1) * u_hat).sum(dim=1)``
- agreement: ``b = b + (u_hat * v.unsqueeze(1)).sum(-1)``
- length form: ``torch.norm(v, dim=-1)``
"""

import torch
import torch.nn.functional as F
from torch import nn


def squash(s, dim=-1, eps=1e-8):
    n2 = (s**2).sum(dim=dim, keepdim=True)
    return s * n2 / (1 + n2) / torch.sqrt(n2 + eps)


class EinsumCapsNet(nn.Module):
    def __init__(self, conv_channels=24, primary_types=4, primary_dim=8, num_classes=10, class_dim=12):
        super().__init__()
        self.primary_types = primary_types
        self.primary_dim = primary_dim
        self.num_primary = primary_types * 6 * 6
        self.num_classes = num_classes
        self.routing_iterations = 3
        self.conv1 = nn.Conv2d(1, conv_channels, kernel_size=9)
        self.primary = nn.Conv2d(conv_channels, primary_types * primary_dim, kernel_size=9, stride=2)
        self.W = nn.Parameter(0.05 * torch.randn(self.num_primary, num_classes, class_dim, primary_dim))

    def forward(self, x):
        h = F.relu(self.conv1(x / 255.0))
        p = self.primary(h)
        n, _, height, width = p.shape
        u = p.view(n, self.primary_types, self.primary_dim, height, width)
        u = u.permute(0, 1, 3, 4, 2).reshape(n, -1, self.primary_dim)
        u = squash(u)

        u_hat = torch.einsum("ijdk,nik->nijd", self.W, u)

        b = torch.zeros(x.size(0), self.num_primary, self.num_classes)
        for i in range(self.routing_iterations):
            c = F.softmax(b, dim=2)
            s = (c.unsqueeze(-1) * u_hat).sum(dim=1)
            v = squash(s)
            if i < self.routing_iterations - 1:
                b = b + (u_hat * v.unsqueeze(1)).sum(-1)

        return torch.norm(v, dim=-1)


def factory():
    return EinsumCapsNet()
