"""CapsNet with ``torch.bmm`` vote transforms after reshapes and two routing iterations.

Variants used:

- input scaling: ``x * (1 / 256)``
- primary capsules: one conv (24 -> 32 channels, k9 s2) and the naive ``out.view(N, -1, 8)`` seen in many
  public implementations (a capsule is 8 consecutive values of the flattened ``[C, H, W]`` map), squash
  over the last dim
- squash form: ``norm ** 2 / (1 + norm ** 2) / norm * s``
- norm form: ``torch.linalg.vector_norm(s, dim=-1, keepdim=True)``
- eps placement: none (no eps at all)
- vote form: ``torch.bmm`` of ``u.transpose(0, 1) [I, N, D_in]`` with ``W [I, D_in, J * D_out]``, then
  ``transpose(0, 1).reshape(N, I, J, D_out)``
- routing iterations: 2
- logits init: ``torch.zeros_like(u_hat[..., 0])``
- detach: none
- softmax form: ``F.softmax(b, dim=2)``
- weighted sum: ``(c[..., None] * u_hat).sum(1)``
- agreement: ``b = b + (u_hat * v[:, None]).sum(-1)``
- length form: ``torch.sqrt((v ** 2).sum(-1))``
"""

import torch
import torch.nn.functional as F
from torch import nn


def squash(s):
    norm = torch.linalg.vector_norm(s, dim=-1, keepdim=True)
    return norm**2 / (1 + norm**2) / norm * s


class BmmCapsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 24, kernel_size=9, stride=1)
        self.primary = nn.Conv2d(24, 32, kernel_size=9, stride=2)
        self.n_in, self.d_in = 32 * 6 * 6 // 8, 8
        self.n_out, self.d_out = 10, 10
        self.weight = nn.Parameter(torch.randn(self.n_in, self.d_in, self.n_out * self.d_out) * 0.05)

    def forward(self, x):
        x = x * (1 / 256)
        x = F.relu(self.conv(x))
        out = self.primary(x)
        u = squash(out.view(out.size(0), -1, 8))  # [N, I, 8]

        batch = u.shape[0]
        u_hat = torch.bmm(u.transpose(0, 1), self.weight)  # [I, N, J * D]
        u_hat = u_hat.transpose(0, 1).reshape(batch, self.n_in, self.n_out, self.d_out)

        b = torch.zeros_like(u_hat[..., 0])
        for it in range(2):
            c = F.softmax(b, dim=2)
            v = squash((c[..., None] * u_hat).sum(1))
            if it != 1:
                b = b + (u_hat * v[:, None]).sum(-1)
        return torch.sqrt((v**2).sum(-1))


def factory():
    return BmmCapsNet()
