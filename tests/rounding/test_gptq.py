"""GPTQ rounding: round-to-nearest when inputs are uncorrelated, less output error when they are not."""

import pytest
import torch
from torch import nn

from capsnet_nncf_plugin.core.quantizer import PowerOfTwoQuantizer
from capsnet_nncf_plugin.nn import VoteTransform
from capsnet_nncf_plugin.rounding import InputMoments, gptq_codes, gptq_layer_codes, supports_gptq
from capsnet_nncf_plugin.rounding.input_moments import MAX_GPTQ_COLUMNS


def _nearest(weight, scales, qmin, qmax):
    return torch.round(weight / scales).clamp(qmin, qmax).to(torch.int64)


def test_uncorrelated_inputs_leave_nothing_to_compensate_so_gptq_is_nearest():
    weight = torch.randn(2, 16, 40, generator=torch.Generator().manual_seed(0))
    scales = torch.full_like(weight, 2.0**-3)
    hessian = 5.0 * torch.eye(40).expand(2, 40, 40)
    assert torch.equal(gptq_codes(weight, hessian, scales, -8, 7), _nearest(weight, scales, -8, 7))


def test_the_second_column_absorbs_the_first_ones_rounding_error():
    # Two inputs that move together (correlation 0.9, 1 % damping): rounding 0.4 down to 0 moves the other
    # weight by 0.4 * 0.9 / 1.01 = 0.356 to 0.756, which rounds up, so the output sum stays near 0.8.
    weight = torch.tensor([[[0.4, 0.4]]])
    hessian = torch.tensor([[[1.0, 0.9], [0.9, 1.0]]])
    codes = gptq_codes(weight, hessian, torch.ones_like(weight), -8, 7)
    assert codes.tolist() == [[[0, 1]]]
    assert _nearest(weight, torch.ones_like(weight), -8, 7).tolist() == [[[0, 0]]]


@pytest.mark.parametrize("act_order", [True, False])
def test_output_error_is_lower_than_nearest_on_correlated_inputs(act_order):
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(2000, 48, generator=generator) @ torch.randn(48, 48, generator=generator)
    weight = torch.randn(1, 24, 48, generator=generator) * 0.1
    scales = torch.full_like(weight, 2.0**-4)  # codes of about +-1.6 sigma, few clamped
    hessian = (inputs.T @ inputs).double().unsqueeze(0)
    codes = gptq_codes(weight, hessian, scales, -4, 3, act_order=act_order)
    nearest = _nearest(weight, scales, -4, 3)

    def output_error(q):
        return float(((inputs @ (weight[0] - q[0] * scales[0]).T) ** 2).mean())

    assert codes.min() >= -4 and codes.max() <= 3
    assert output_error(codes) < 0.6 * output_error(nearest)


def test_conv_moments_are_the_sums_over_unfolded_patches():
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    images = torch.randn(2, 3, 7, 7, generator=torch.Generator().manual_seed(2))
    moments = InputMoments(conv)
    moments.add(images[:1])
    moments.add(images[1:])
    padded = nn.functional.pad(images, (1, 1, 1, 1)).double()
    expected = torch.zeros(27, 27, dtype=torch.float64)
    for n in range(2):
        for row in range(0, 7, 2):
            for column in range(0, 7, 2):
                patch = padded[n, :, row : row + 3, column : column + 3].reshape(-1)
                expected += torch.outer(patch, patch)
    assert moments.samples == 2 * 4 * 4
    torch.testing.assert_close(moments.hessian[0], expected)


def test_vote_transform_gets_one_moment_matrix_per_input_capsule():
    votes = VoteTransform(in_capsules=5, out_capsules=3, in_dim=4, out_dim=6)
    poses = torch.randn(10, 5, 4, generator=torch.Generator().manual_seed(3))
    moments = InputMoments(votes)
    moments.add(poses)
    torch.testing.assert_close(moments.hessian, torch.einsum("nik,nil->ikl", poses.double(), poses.double()))
    quantizer = PowerOfTwoQuantizer(4, True, tuple([-6] * 5), axis=0)
    codes = gptq_layer_codes(votes, moments.hessian, quantizer)
    assert codes.shape == votes.weight.shape and codes.min() >= -8 and codes.max() <= 7


def test_layers_gptq_cannot_round_keep_nearest():
    assert supports_gptq(nn.Conv2d(8, 8, 3)) and supports_gptq(nn.Linear(8, 2))
    assert not supports_gptq(nn.Conv2d(8, 8, 3, groups=2))
    assert not supports_gptq(nn.Conv3d(1, 8, 3))
    wide = MAX_GPTQ_COLUMNS // 81 + 1
    assert not supports_gptq(nn.Conv2d(wide, 8, 9))  # ShallowCaps' 9 x 9 x 256 primary capsules
    with pytest.raises(TypeError, match="Conv3d"):
        InputMoments(nn.Conv3d(1, 8, 3))


def test_bad_arguments_say_what_is_expected():
    weight, hessian = torch.zeros(1, 2, 3), torch.eye(3).unsqueeze(0)
    with pytest.raises(ValueError, match=r"weight \[groups, rows, K\]"):
        gptq_codes(weight, torch.eye(2).unsqueeze(0), torch.ones_like(weight), -8, 7)
    with pytest.raises(ValueError, match="damping must be > 0"):
        gptq_codes(weight, hessian, torch.ones_like(weight), -8, 7, damping=0)
    with pytest.raises(RuntimeError, match="saw no input"):
        _ = InputMoments(nn.Linear(3, 2)).hessian
