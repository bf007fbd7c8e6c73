"""CapsNet with a single routing iteration (uniform coupling), einsum votes and an einsum weighted sum.

Variants used:

- input scaling: ``x * (1 / 256)``
- primary capsules: one conv (24 -> 32 channels, k9 s2), ``reshape(N, types, D, -1)`` ->
  ``permute(0, 1, 3, 2)`` -> ``reshape(N, -1, D)``, squash over the last dim
- squash form: ``s * n2 / (1 + n2) / torch.sqrt(n2 + eps)``
- norm form: ``n2 = torch.linalg.vector_norm(s, dim=-1, keepdim=True) ** 2``
- eps placement: inside the sqrt (1e-9)
- vote form: ``torch.einsum("bik,ijkd->bijd", u, W)`` with ``W [I, J, D_in, D_out]``
- routing iterations: 1 (the agreement step is in the loop but never runs)
- logits init: ``torch.zeros(x.shape[0], I, J, dtype=x.dtype)`` (batch size read from the model input)
- detach: none
- softmax form: ``F.softmax(b, dim=-1)``
- weighted sum: ``torch.einsum("bij,bijd->bjd", c, u_hat)``
- agreement (never reached with one iteration): ``torch.einsum("bijd,bjd->bij", u_hat, v)``
- length form: ``v.norm(dim=-1)``
"""

import torch
import torch.nn.functional as F
from torch import nn


class OneIterationCapsNet(nn.Module):
    def __init__(self, n_iterations=1):
        super().__init__()
        self.n_iterations = n_iterations
        self.n_types, self.d_in = 4, 8
        self.n_in = self.n_types * 36
        self.n_out, self.d_out = 10, 12
        self.conv1 = nn.Conv2d(1, 24, kernel_size=9)
        self.primary = nn.Conv2d(24, self.n_types * self.d_in, kernel_size=9, stride=2)
        self.W = nn.Parameter(0.05 * torch.randn(self.n_in, self.n_out, self.d_in, self.d_out))

    @staticmethod
    def squash(s, eps=1e-9):
        n2 = torch.linalg.vector_norm(s, dim=-1, keepdim=True) ** 2
        return s * n2 / (1 + n2) / torch.sqrt(n2 + eps)

    def forward(self, x):
        h = F.relu(self.conv1(x * (1 / 256)))
        p = self.primary(h)
        u = (
            p.reshape(p.shape[0], self.n_types, self.d_in, -1)
            .permute(0, 1, 3, 2)
            .reshape(p.shape[0], -1, self.d_in)
        )
        u = self.squash(u)

        u_hat = torch.einsum("bik,ijkd->bijd", u, self.W)

        b = torch.zeros(x.shape[0], self.n_in, self.n_out, dtype=x.dtype)
        for it in range(self.n_iterations):
            c = F.softmax(b, dim=-1)
            v = self.squash(torch.einsum("bij,bijd->bjd", c, u_hat))
            if it < self.n_iterations - 1:
                b = b + torch.einsum("bijd,bjd->bij", u_hat, v)
        return v.norm(dim=-1)


def factory():
    return OneIterationCapsNet()
