import math

import torch

from capsnet_nncf_plugin.nn import CapsuleLength, Squash, capsule_length, squash


def test_squash_maps_norm_n_to_n2_over_1_plus_n2_and_keeps_direction():
    vectors = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    out = squash(vectors)
    norms = out.norm(dim=-1)
    assert math.isclose(norms[0].item(), 25 / 26, rel_tol=1e-6)
    assert math.isclose(norms[1].item(), 0.25 / 1.25, rel_tol=1e-5)
    assert norms[2].item() == 0.0
    assert torch.allclose(out[0] / norms[0], torch.tensor([0.6, 0.8]))


def test_squash_module_uses_its_dimension():
    capsule_map = torch.randn(2, 3, 5, 4, 4)
    assert torch.equal(Squash(dim=2)(capsule_map), squash(capsule_map, dim=2))
    assert (Squash(dim=2)(capsule_map).norm(dim=2) < 1).all()


def test_squash_gradient_is_finite_at_zero():
    zeros = torch.zeros(4, 8, requires_grad=True)
    squash(zeros).sum().backward()
    assert torch.isfinite(zeros.grad).all()


def test_capsule_length():
    capsules = torch.tensor([[[3.0, 4.0], [0.0, 1.0]]])
    assert torch.allclose(capsule_length(capsules), torch.tensor([[5.0, 1.0]]))
    assert torch.equal(CapsuleLength()(capsules), capsule_length(capsules))
