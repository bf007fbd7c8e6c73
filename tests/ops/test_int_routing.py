"""Integer dynamic routing: a hand-worked example, accuracy against float routing, shapes and errors."""

import pytest
import torch
from routing_cases import agreeing_votes, calibrated_routing

from capsnet_nncf_plugin.nn.routing import DynamicRouting
from capsnet_nncf_plugin.ops import RoutingQuantization, check_routing_bounds, int_dynamic_routing


def test_hand_worked_two_iterations():
    # votes [1, 2, 2, 2] at e_u = -4 (8 = 0.5); every format 8 bits, S and B at exponent -4.
    votes = torch.tensor([[[[8, 0], [0, 8]], [[8, 0], [0, -8]]]], dtype=torch.int8)
    params = RoutingQuantization(2, -4, 8, [8, 8], [-4, -4], [8, 8], [8, 8], [-4], [8])
    # Iteration 0: B = 0 -> C = round(256 / 2) = 128 everywhere.
    #   sum_i C U: j=0: 128*[8,0] + 128*[8,0] = [2048, 0];  j=1: 128*[0,8] + 128*[0,-8] = [0, 0]  (exp -12)
    #   S = round(acc / 2^8) (exp -12 -> -4): j=0 [8, 0], j=1 [0, 0]
    #   V = int_squash([8, 0], -4, 8): N2 = 64, F = 27, R = 8 * 2^27, A = 4^4 + 64 = 320, c = 7 - 27:
    #       round(8 * 8 * 2^27 * 2^-20 / 320) = round(25.6) = 26 -> V0 = [[26, 0], [0, 0]] (0.2 = 0.5^2/1.25)
    #   A = sum_d U V (exp -4 - 7 = -11): A[i, 0] = 8 * 26 = 208, A[i, 1] = 0
    #   B1 = round(A / 2^7) (exp -11 -> -4): 1.625 -> 2; B1 = [[2, 0], [2, 0]]
    # Iteration 1: C = int_softmax([2, 0], -4, 8) = [136, 120] for both inputs
    #       (z = round(2 * 24204406 / 2^12) = 11819, E = round(948000448 * 1073253605 / 2^30) = 947569402,
    #        C = round(256 * [2^30, 947569402] / 2021311226) = [135.99, 120.01] -> [136, 120])
    #   sum_i C U: j=0: 136*8 + 136*8 = 2176 -> S = 2176 / 2^8 = 8.5 -> 9 (tie, away from zero)
    #              j=1: 120*8 - 120*8 = 0
    #   V = int_squash([9, 0], -4, 8): A = 256 + 81 = 337; round(9 * 9 * 2^7 / 337) = round(30.77) = 31
    result = int_dynamic_routing(votes, params)
    assert result.dtype == torch.int8
    assert result.tolist() == [[[31, 0], [0, 0]]]
    # One iteration stops after V0.
    one = RoutingQuantization(1, -4, 8, [8], [-4], [8], [8])
    assert int_dynamic_routing(votes, one).tolist() == [[[26, 0], [0, 0]]]


# Output LSBs of the integer result against float routing of the same (dequantized) votes. Measured over
# three seeds at 4..16 bits on these shapes: max 0.7..2.5, mean 0.14..0.72 LSB; 16 and 8 bits are tested.
MAX_ERROR_LSB = 3.0
MEAN_ERROR_LSB = 0.8


@pytest.mark.parametrize(
    ("shape", "scale", "bits"),
    [
        ((2, 1152, 10, 16), 0.05, 16),  # ShallowCaps class capsules, long outputs (squash near 1)
        ((2, 1152, 10, 16), 0.05, 8),
        ((4, 1152, 10, 16), 0.01, 8),  # short outputs: squash far from saturating
        ((32, 32, 32, 8), 0.5, 16),  # DeepCaps 3D routing, positions folded into N (2 images x 4 x 4)
        ((32, 32, 32, 8), 0.5, 8),
    ],
)
def test_agrees_with_float_routing(shape, scale, bits):
    generator = torch.Generator().manual_seed(bits + shape[0])
    votes, winners = agreeing_votes(shape, scale, generator)
    quantized, dequantized, params = calibrated_routing(votes, bits)
    result = int_dynamic_routing(quantized, params).double()
    reference = DynamicRouting(params.iterations).double()(dequantized) * 2.0 ** (bits - 1)
    error = (result - reference).abs()
    assert float(error.max()) <= MAX_ERROR_LSB
    assert float(error.mean()) <= MEAN_ERROR_LSB
    # The longest capsule (the class score) is the one the votes agree on, as in float.
    assert torch.equal(result.norm(dim=-1).argmax(dim=-1), winners)
    assert torch.equal(reference.norm(dim=-1).argmax(dim=-1), winners)


def test_samples_are_routed_independently():
    # What makes 3D routing "the same op with positions folded into N".
    generator = torch.Generator().manual_seed(3)
    votes = torch.randint(-128, 128, (6, 5, 4, 8), generator=generator, dtype=torch.int8)
    params = RoutingQuantization(3, -6, 8, [8] * 3, [-4] * 3, [8] * 3, [8] * 3, [-6, -6], [8, 8])
    together = int_dynamic_routing(votes, params)
    apart = torch.cat([int_dynamic_routing(votes[n : n + 1], params) for n in range(6)])
    assert torch.equal(together, apart)


def test_empty_batch_and_dtypes():
    params = RoutingQuantization(2, -6, 12, [8, 8], [-4, -4], [8, 8], [8, 12], [-6], [8])
    result = int_dynamic_routing(torch.zeros(0, 1152, 10, 16, dtype=torch.int16), params)
    assert result.shape == (0, 10, 16)
    assert result.dtype == torch.int16  # out_bits[-1] = 12


PARAMS = RoutingQuantization(2, -6, 8, [8, 8], [-4, -4], [8, 8], [8, 8], [-6], [8])


@pytest.mark.parametrize(
    ("votes", "params", "message"),
    [
        (torch.zeros(2, 3, 4, dtype=torch.int8), PARAMS, r"votes must be \[N, I, J, D\] \(rank 4\)"),
        (torch.zeros(2, 3, 4, 8), PARAMS, "votes has dtype torch.float32"),
        (torch.zeros(2, 3, 4, 65, dtype=torch.int8), PARAMS, "capsule dimension D=65"),
        (torch.zeros(2, 3, 0, 8, dtype=torch.int8), PARAMS, "J=0 output capsules"),
        (torch.zeros(2, 0, 4, 8, dtype=torch.int8), PARAMS, "I=0 input capsules"),
        (torch.full((2, 3, 4, 8), 200, dtype=torch.int16), PARAMS, "outside the signed 8-bit range"),
        (torch.zeros(2, 3, 4, 8, dtype=torch.int8), PARAMS.to_dict(), "params must be a RoutingQuantization"),
    ],
)
def test_rejects_bad_arguments(votes, params, message):
    with pytest.raises(ValueError, match=message):
        int_dynamic_routing(votes, params)


def test_rejects_formats_that_could_overflow_int64():
    wide = RoutingQuantization(2, 6, 16, [16, 16], [-31, -31], [16, 16], [16, 16], [-20], [16])
    # sum_I C U at 2^(6 - 16) rescaled to 2^-31: a left shift by 21 of up to I * 2^31.
    with pytest.raises(ValueError, match=r"sum_I C\*U can reach .* pre_exponents\[0\]=-31"):
        check_routing_bounds(wide, inputs=1152, capsule_dim=16)
    # Logits at 2^6 aligned with agreements at 2^(-31 - 15) and requantized to 2^-31.
    far = RoutingQuantization(3, -31, 16, [8] * 3, [-20] * 3, [8] * 3, [16] * 3, [6, -31], [16, 16])
    with pytest.raises(ValueError, match=r"logit update of iteration 1 .* logit_exponents\[1\]=-31"):
        check_routing_bounds(far, inputs=8, capsule_dim=16)
    check_routing_bounds(PARAMS, inputs=1152, capsule_dim=64)  # realistic formats pass
