"""CapsNet with a broadcast 5-D matmul vote transform and detached votes in the non-final iterations.

Variants used:

- input scaling: ``(x / 255 - 0.1307) / 0.3081`` (MNIST mean / std normalisation)
- primary capsules: one conv (16 -> 32 channels, k9 s2), ``permute(0, 2, 3, 1)`` ->
  ``reshape(N, -1, D)`` (channels-last: each capsule is D consecutive channels at one position),
  squash over the last dim
- squash form: ``norm ** 2 / (1 + norm ** 2) / (norm + eps) * s``
- norm form: ``torch.norm(s, dim=-1, keepdim=True)``
- eps placement: outside the sqrt, added to the norm (1e-8)
- vote form: ``(W @ u[:, :, None, :, None]).squeeze(-1)`` with ``W [1, I, J, D_out, D_in]``
- routing iterations: 3
- logits init: ``u_hat.new_zeros(u_hat.size(0), I, J)``
- detach: yes, ``u_hat_detached = u_hat.detach()`` used in the non-final iterations
- softmax form: ``torch.softmax(b, dim=-1)`` (dim -1 of ``b [N, I, J]`` is the output capsules)
- weighted sum: ``torch.matmul(c.transpose(1, 2).unsqueeze(2), u_hat.transpose(1, 2)).squeeze(2)``
- agreement: via matmul, ``(u_hat.unsqueeze(-2) @ v[:, None, :, :, None]).squeeze(-1).squeeze(-1)``
- length form: ``(v ** 2).sum(-1) ** 0.5``
"""

import torch
import torch.nn.functional as F
from torch import nn


class MatmulCapsNet(nn.Module):
    def __init__(
        self, in_channels=1, conv_channels=16, primary_channels=32, caps_dim=8, out_caps=10, out_dim=8
    ):
        super().__init__()
        self.caps_dim = caps_dim
        self.in_caps = (primary_channels // caps_dim) * 36
        self.out_caps = out_caps
        self.iterations = 3
        self.eps = 1e-8
        self.conv1 = nn.Conv2d(in_channels, conv_channels, 9)
        self.primary_caps = nn.Conv2d(conv_channels, primary_channels, 9, stride=2)
        self.W = nn.Parameter(0.1 * torch.randn(1, self.in_caps, out_caps, out_dim, caps_dim))

    def squash(self, s):
        norm = torch.norm(s, dim=-1, keepdim=True)
        return norm**2 / (1 + norm**2) / (norm + self.eps) * s

    def forward(self, x):
        x = (x / 255 - 0.1307) / 0.3081
        x = F.relu(self.conv1(x))
        x = self.primary_caps(x)
        u = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.caps_dim)
        u = self.squash(u)

        u_hat = (self.W @ u[:, :, None, :, None]).squeeze(-1)  # [N, I, J, D]
        u_hat_detached = u_hat.detach()

        b = u_hat.new_zeros(u_hat.size(0), self.in_caps, self.out_caps)
        for r in range(self.iterations):
            c = torch.softmax(b, dim=-1)
            if r == self.iterations - 1:
                s = torch.matmul(c.transpose(1, 2).unsqueeze(2), u_hat.transpose(1, 2)).squeeze(2)
                v = self.squash(s)
            else:
                s = torch.matmul(c.transpose(1, 2).unsqueeze(2), u_hat_detached.transpose(1, 2)).squeeze(2)
                v = self.squash(s)
                b = b + (u_hat_detached.unsqueeze(-2) @ v[:, None, :, :, None]).squeeze(-1).squeeze(-1)

        return (v**2).sum(-1) ** 0.5


def factory():
    return MatmulCapsNet()
