"""CapsNet in the "class-capsules-first" layout with a hand-written softmax over the output capsules.

Votes are laid out ``[J, N, I, 1, D]`` (output capsules first), as several early public implementations do,
and the routing softmax is written by hand: transpose the routed dimension last, ``contiguous().view`` to
2-D, ``F.softmax``, then ``view`` and transpose back.

Variants used:

- input scaling: ``(x / 255 - 0.1307) / 0.3081``
- primary capsules: an ``nn.ModuleList`` of 8 ``nn.Conv2d`` (24 -> 3 channels, k9 s2), one per capsule
  dimension, ``torch.cat([conv(x).view(N, -1, 1) for conv in self.capsules], dim=-1)`` -> ``u [N, I, 8]``,
  squash over the last dim
- squash form: ``s * n2 / (1 + n2) / torch.sqrt(n2)``
- norm form: ``n2 = (s * s).sum(dim=-1, keepdim=True)``
- eps placement: none (no eps at all)
- vote form: ``u[None, :, :, None, :] @ W[:, None, :, :, :]`` with ``W [J, I, D_in, D_out]`` -> votes
  ``[J, N, I, 1, D_out]`` (no squeeze; the routing works on the 5-D layout)
- routing iterations: 3
- logits init: ``torch.zeros_like(u_hat[..., :1])`` -> ``b [J, N, I, 1, 1]``
- detach: yes, ``u_hat_detached = u_hat.detach()`` used in the non-final iterations
- softmax form: by hand over dim 0 (the output capsules): ``transpose(0, -1)`` ->
  ``contiguous().view(-1, J)`` -> ``F.softmax(dim=-1)`` -> ``view`` -> ``transpose(0, -1)``
- weighted sum: ``(c * u_hat).sum(dim=2, keepdim=True)`` -> ``s [J, N, 1, 1, D]``
- agreement: ``b = b + (u_hat_detached * v).sum(dim=-1, keepdim=True)``
- length form: ``torch.norm(v, dim=-1)`` after ``v.view(J, -1, D).transpose(0, 1)``
"""

import torch
import torch.nn.functional as F
from torch import nn


def softmax_over(t, dim):
    last = t.dim() - 1
    moved = t.transpose(dim, last).contiguous()
    probs = F.softmax(moved.view(-1, moved.size(-1)), dim=-1)
    return probs.view(moved.size()).transpose(dim, last)


def squash(s):
    n2 = (s * s).sum(dim=-1, keepdim=True)
    return s * n2 / (1 + n2) / torch.sqrt(n2)


class HandwrittenSoftmaxCapsNet(nn.Module):
    def __init__(self, routing_iterations=3):
        super().__init__()
        self.routing_iterations = routing_iterations
        self.num_classes = 10
        self.out_dim = 8
        self.conv1 = nn.Conv2d(1, 24, kernel_size=9)
        self.capsules = nn.ModuleList([nn.Conv2d(24, 3, kernel_size=9, stride=2) for _ in range(8)])
        num_routes = 3 * 6 * 6
        self.route_weights = nn.Parameter(torch.randn(self.num_classes, num_routes, 8, self.out_dim) * 0.05)

    def forward(self, x):
        x = (x / 255 - 0.1307) / 0.3081
        x = F.relu(self.conv1(x))
        u = torch.cat([conv(x).view(x.size(0), -1, 1) for conv in self.capsules], dim=-1)
        u = squash(u)  # [N, I, 8]

        u_hat = u[None, :, :, None, :] @ self.route_weights[:, None, :, :, :]  # [J, N, I, 1, D]
        u_hat_detached = u_hat.detach()

        b = torch.zeros_like(u_hat[..., :1])
        for i in range(self.routing_iterations):
            c = softmax_over(b, dim=0)
            if i == self.routing_iterations - 1:
                v = squash((c * u_hat).sum(dim=2, keepdim=True))
            else:
                v = squash((c * u_hat_detached).sum(dim=2, keepdim=True))
                b = b + (u_hat_detached * v).sum(dim=-1, keepdim=True)

        v = v.view(self.num_classes, -1, self.out_dim).transpose(0, 1)  # [N, J, D]
        return torch.norm(v, dim=-1)


def factory():
    return HandwrittenSoftmaxCapsNet()
