import torch

from capsnet_nncf_plugin.nn import (
    ClassCapsules,
    ConvCaps2d,
    ConvCaps3d,
    DynamicRouting,
    PrimaryCapsules,
    VoteTransform,
    flatten_capsules,
    squash,
)


def test_primary_capsules_shape_order_and_norm():
    layer = PrimaryCapsules(16, num_capsules=4, capsule_dim=8, kernel_size=9, stride=2)
    features = torch.randn(2, 16, 20, 20)
    capsules = layer(features)
    assert layer.output_grid(20, 20) == (6, 6)
    assert capsules.shape == (2, 4 * 6 * 6, 8)
    assert (capsules.norm(dim=-1) < 1).all()
    poses = layer.conv(features)  # capsule i = (type*6 + y)*6 + x holds channels type*8 .. type*8+7 at (y, x)
    torch.testing.assert_close(capsules[1, (3 * 6 + 2) * 6 + 5], squash(poses[1, 24:32, 2, 5]))


def test_vote_transform_is_a_per_pair_matrix_product():
    layer = VoteTransform(5, 3, in_dim=4, out_dim=6, bias=True)
    torch.nn.init.normal_(layer.bias)
    capsules = torch.randn(2, 5, 4)
    votes = layer(capsules)
    assert votes.shape == (2, 5, 3, 6)
    torch.testing.assert_close(votes[1, 4, 2], layer.weight[4, 2] @ capsules[1, 4] + layer.bias[2])


def test_class_capsules_route_the_votes():
    layer = ClassCapsules(6, 3, in_dim=4, out_dim=5, iterations=2)
    capsules = torch.randn(2, 6, 4)
    torch.testing.assert_close(layer(capsules), DynamicRouting(2)(layer.votes(capsules)))


def test_conv_caps_2d_halves_the_grid_with_stride_2_and_squashes_capsules():
    layer = ConvCaps2d(2, 4, 3, 8, kernel_size=3, stride=2)
    out = layer(torch.randn(2, 2, 4, 7, 7))
    assert out.shape == (2, 3, 8, 4, 4)
    assert (out.norm(dim=2) < 1).all()
    assert sum(p.numel() for p in layer.parameters()) == 8 * 24 * 9 + 24


def test_conv_caps_3d_routes_each_position_independently():
    torch.manual_seed(0)
    layer = ConvCaps3d(3, 4, 2, 5, kernel_size=3, iterations=3)
    capsule_map = torch.randn(2, 3, 4, 3, 3)
    out = layer(capsule_map)
    assert out.shape == (2, 2, 5, 3, 3)
    # Shared weights: one kernel of depth D_in, the same for every input capsule.
    assert layer.votes.weight.shape == (2 * 5, 1, 4, 3, 3)
    # Votes at position (y, x) for input capsule i: the 3x3 neighbourhood of capsule i's poses.
    padded = torch.nn.functional.pad(capsule_map, (1, 1, 1, 1))
    y, x = 1, 2
    votes = torch.empty(2, 3, 2, 5)
    for i in range(3):
        patch = padded[:, i, :, y : y + 3, x : x + 3]  # [N, D_in, 3, 3]
        flat = torch.einsum("ndhw,odhw->no", patch, layer.votes.weight[:, 0]) + layer.votes.bias
        votes[:, i] = flat.reshape(2, 2, 5)
    torch.testing.assert_close(out[:, :, :, y, x], DynamicRouting(3)(votes), rtol=1e-4, atol=1e-6)


def test_flatten_capsules_orders_type_then_row_then_column():
    capsule_map = torch.randn(2, 3, 4, 2, 5)
    flat = flatten_capsules(capsule_map)
    assert flat.shape == (2, 30, 4)
    assert torch.equal(flat[1, (2 * 2 + 1) * 5 + 3], capsule_map[1, 2, :, 1, 3])
