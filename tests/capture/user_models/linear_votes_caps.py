"""CapsNet with a per-capsule linear vote map, five routing iterations and a method-call softmax.

Variants used:

- input scaling: ``x / 255.0``
- primary capsules: one conv (16 -> 24 channels, k9 s2) read as ``D x (types * H * W)``:
  ``view(N, D, -1).transpose(1, 2)`` (dimension-major channels), squash over the last dim
- squash form: ``norm ** 2 / (1 + norm ** 2) / norm * s`` with the eps in the norm
- norm form: ``((s ** 2).sum(-1, keepdim=True) + eps) ** 0.5``
- eps placement: inside the square root (written as ``** 0.5``, 1e-9)
- vote form: per-capsule linear map, ``torch.matmul(u.unsqueeze(2), W)`` with ``W [I, D_in, J * D_out]``
  (an ``nn.Parameter``), then ``.squeeze(2).view(N, I, J, D_out)``
- routing iterations: 5
- logits init: ``u_hat.new_zeros(u_hat.shape[:3])``
- detach: none
- softmax form: ``b.softmax(dim=2)``
- weighted sum: ``(c.unsqueeze(3) * u_hat).sum(dim=1, keepdim=True)`` -> ``s [N, 1, J, D]``
- agreement: ``b = b + (u_hat * v).sum(dim=-1)`` with ``v [N, 1, J, D]`` kept 4-D
- length form: ``torch.linalg.vector_norm(v, dim=-1)``
"""

import torch
import torch.nn.functional as F
from torch import nn


class LinearVotesCapsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.in_dim = 6
        self.in_caps = 24 // self.in_dim * 36
        self.out_caps = 10
        self.out_dim = 8
        self.num_iterations = 5
        self.conv = nn.Conv2d(1, 16, 9)
        self.primary = nn.Conv2d(16, 24, 9, stride=2)
        self.W = nn.Parameter(torch.randn(self.in_caps, self.in_dim, self.out_caps * self.out_dim) * 0.05)

    @staticmethod
    def squash(s, eps=1e-9):
        norm = ((s**2).sum(-1, keepdim=True) + eps) ** 0.5
        return norm**2 / (1 + norm**2) / norm * s

    def forward(self, x):
        x = F.relu(self.conv(x / 255.0))
        p = self.primary(x)
        u = p.view(p.size(0), self.in_dim, -1).transpose(1, 2)  # [N, I, D_in]
        u = self.squash(u)

        u_hat = torch.matmul(u.unsqueeze(2), self.W).squeeze(2)  # [N, I, J * D]
        u_hat = u_hat.view(u.size(0), self.in_caps, self.out_caps, self.out_dim)

        b = u_hat.new_zeros(u_hat.shape[:3])
        for i in range(self.num_iterations):
            c = b.softmax(dim=2)
            v = self.squash((c.unsqueeze(3) * u_hat).sum(dim=1, keepdim=True))  # [N, 1, J, D]
            if i < self.num_iterations - 1:
                b = b + (u_hat * v).sum(dim=-1)
        return torch.linalg.vector_norm(v.squeeze(1), dim=-1)


def factory():
    return LinearVotesCapsNet()
