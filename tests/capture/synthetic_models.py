"""Small untrained CapsNet pieces written by hand in the styles real code uses, for the recognizers' tests.

Each takes ``[N, 1, 12, 12]`` images; none uses the plugin's modules.
"""

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-8


def squash_eps_inside(s, dim=-1):
    n2 = (s**2).sum(dim=dim, keepdim=True)
    return s * n2 / (1 + n2) / torch.sqrt(n2 + EPS)


def squash_eps_outside(s, dim=-1):
    norm = torch.norm(s, dim=dim, keepdim=True)
    return norm**2 / (1 + norm**2) / (norm + EPS) * s


def squash_vector_norm(s, dim=-1):
    norm = torch.linalg.vector_norm(s, dim=dim, keepdim=True)
    return (norm / (1 + norm**2)) * s


def squash_power_half(s, dim=-1):
    n2 = (s * s).sum(dim, keepdim=True)
    return s * (n2 / (1 + n2)) / (n2 + EPS) ** 0.5


def not_a_squash(s, dim=-1):
    """The squash of Efficient-CapsNet, ``(1 - 1/e^|s|) s/|s|``: another non-linearity."""
    norm = torch.norm(s, dim=dim, keepdim=True)
    return (1 - 1 / torch.exp(norm)) * s / (norm + EPS)


SQUASHES = {
    "eps-inside": squash_eps_inside,
    "eps-outside": squash_eps_outside,
    "vector-norm": squash_vector_norm,
    "power-half": squash_power_half,
}


class HandWrittenCapsNet(nn.Module):
    """conv -> primary capsules (conv + view/permute + squash) -> votes -> routing -> lengths.

    ``squash``, ``iterations``, ``votes`` (einsum | matmul) and ``softmax_dim`` (2: output capsules, the
    supported variant; 1: input capsules) pick the variant.
    """

    def __init__(self, squash=squash_eps_inside, iterations=3, votes="einsum", softmax_dim=2, capsule_dim=4):
        super().__init__()
        torch.manual_seed(0)
        self.squash, self.iterations, self.votes_form, self.softmax_dim = (
            squash,
            iterations,
            votes,
            softmax_dim,
        )
        self.capsule_dim = capsule_dim
        self.conv = nn.Conv2d(1, 8, 3)
        self.primary = nn.Conv2d(8, 2 * capsule_dim, 3, stride=2)  # 2 types x D at 4x4
        self.inputs = 2 * 4 * 4
        self.W = nn.Parameter(0.3 * torch.randn(self.inputs, 3, 5, capsule_dim))  # [I, J, D_out, D_in]

    def forward(self, x):
        h = F.relu(self.conv(x / 255.0))
        p = self.primary(h)
        n = x.size(0)
        u = p.view(n, 2, self.capsule_dim, 4, 4).permute(0, 1, 3, 4, 2).reshape(n, -1, self.capsule_dim)
        u = self.squash(u)
        if self.votes_form == "einsum":
            u_hat = torch.einsum("ijdk,nik->nijd", self.W, u)
        else:
            u_hat = (self.W[None] @ u[:, :, None, :, None]).squeeze(-1)
        b = torch.zeros(n, self.inputs, 3)
        for i in range(self.iterations):
            c = F.softmax(b, dim=self.softmax_dim)
            v = self.squash((c.unsqueeze(-1) * u_hat).sum(dim=1))
            if i < self.iterations - 1:
                b = b + (u_hat * v.unsqueeze(1)).sum(-1)
        return torch.norm(v, dim=-1)


def images(count=6, seed=0):
    return torch.randint(0, 256, (count, 1, 12, 12), generator=torch.Generator().manual_seed(seed)).float()
