"""UNSUPPORTED variant: dynamic routing whose softmax runs over the INPUT capsules (dim=1), not the outputs.

Several public implementations normalise the coupling coefficients over the wrong axis; the network still
trains, but it is no longer Sabour et al.'s routing, and the capture must leave it in float with a warning.
Apart from that softmax it is an ordinary einsum CapsNet.

Variants used:

- input scaling: ``x / 255.0``
- primary capsules: one conv (16 -> 32 channels, k9 s2), ``view(N, types, D, H, W)`` ->
  ``permute(0, 1, 3, 4, 2)`` -> ``reshape(N, -1, D)``, squash over the last dim
- squash form: ``s * n2 / (1 + n2) / torch.sqrt(n2 + eps)``
- norm form: ``n2 = (s ** 2).sum(dim=-1, keepdim=True)``
- eps placement: inside the sqrt (1e-8)
- vote form: ``torch.einsum("nik,ijdk->nijd", u, W)`` with ``W [I, J, D_out, D_in]``
- routing iterations: 3
- logits init: ``torch.zeros(x.size(0), I, J)`` (batch size read from the model input)
- detach: none
- softmax form: ``F.softmax(b, dim=1)`` -- over the INPUT capsules (unsupported)
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


class InputSoftmaxCapsNet(nn.Module):
    def __init__(self, primary_types=4, primary_dim=8, num_classes=10, class_dim=8):
        super().__init__()
        self.primary_types = primary_types
        self.primary_dim = primary_dim
        self.num_primary = primary_types * 6 * 6
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(1, 16, kernel_size=9)
        self.primary = nn.Conv2d(16, primary_types * primary_dim, kernel_size=9, stride=2)
        self.W = nn.Parameter(0.05 * torch.randn(self.num_primary, num_classes, class_dim, primary_dim))

    def forward(self, x):
        h = F.relu(self.conv1(x / 255.0))
        p = self.primary(h)
        n, _, height, width = p.shape
        u = p.view(n, self.primary_types, self.primary_dim, height, width)
        u = squash(u.permute(0, 1, 3, 4, 2).reshape(n, -1, self.primary_dim))

        u_hat = torch.einsum("nik,ijdk->nijd", u, self.W)

        b = torch.zeros(x.size(0), self.num_primary, self.num_classes)
        for i in range(3):
            c = F.softmax(b, dim=1)  # over the input capsules: the unsupported variant
            s = (c.unsqueeze(-1) * u_hat).sum(dim=1)
            v = squash(s)
            if i < 2:
                b = b + (u_hat * v.unsqueeze(1)).sum(-1)
        return torch.norm(v, dim=-1)


def factory():
    return InputSoftmaxCapsNet()
