import pytest
import torch

from capsnet_nncf_plugin.nn import DynamicRouting


def reference_routing(votes: torch.Tensor, iterations: int) -> torch.Tensor:
    """Routing by agreement as plain loops over samples, inputs and outputs (Sabour et al., Procedure 1)."""
    batch, inputs, outputs, dim = votes.shape
    result = torch.zeros(batch, outputs, dim, dtype=torch.float64)
    for n in range(batch):
        logits = [[0.0] * outputs for _ in range(inputs)]
        for iteration in range(iterations):
            coupling = [torch.softmax(torch.tensor(row, dtype=torch.float64), dim=0) for row in logits]
            for j in range(outputs):
                s = sum(coupling[i][j] * votes[n, i, j] for i in range(inputs))
                norm2 = float((s * s).sum())
                result[n, j] = s * (norm2 / (1 + norm2) / (norm2 + 1e-8) ** 0.5)
            if iteration < iterations - 1:
                for i in range(inputs):
                    for j in range(outputs):
                        logits[i][j] += float((votes[n, i, j] * result[n, j]).sum())
    return result


@pytest.mark.parametrize("iterations", [1, 2, 3, 5])
def test_routing_matches_reference_loop(iterations):
    torch.manual_seed(iterations)
    votes = torch.randn(3, 7, 4, 5, dtype=torch.float64)
    out = DynamicRouting(iterations)(votes)
    assert out.shape == (3, 4, 5)
    torch.testing.assert_close(out, reference_routing(votes, iterations), rtol=1e-10, atol=1e-12)


def test_routing_agreement_concentrates_coupling():
    # Every input votes the same direction for output 0 and random ones for output 1: after routing,
    # output 0 is long and output 1 short.
    torch.manual_seed(0)
    direction = torch.tensor([1.0, 0.0, 0.0, 0.0])
    votes = torch.empty(1, 32, 2, 4)
    votes[:, :, 0] = 0.2 * direction
    votes[:, :, 1] = 0.2 * torch.nn.functional.normalize(torch.randn(1, 32, 4), dim=-1)
    lengths = DynamicRouting(3)(votes).norm(dim=-1)[0]
    assert lengths[0] > 0.9 and lengths[1] < 0.5


def test_routing_rejects_zero_iterations():
    with pytest.raises(ValueError, match="iterations >= 1"):
        DynamicRouting(0)
