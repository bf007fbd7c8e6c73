"""The torch.library ops: same results as the reference, traceable by torch.export with a dynamic batch."""

import importlib

import torch

import capsnet_nncf_plugin.ops as ops
from capsnet_nncf_plugin.ops import RoutingQuantization, int_dynamic_routing, int_squash

PARAMS = RoutingQuantization(2, -6, 8, [8, 8], [-4, -4], [8, 8], [8, 12], [-6], [8])


class QuantizedCapsuleTail(torch.nn.Module):
    """A tiny model calling both ops, as a quantized capsule network's last layers would."""

    def forward(
        self, pre_activations: torch.Tensor, votes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        capsules = torch.ops.capsnet.int_squash(pre_activations, -4, 8)
        routed = torch.ops.capsnet.int_dynamic_routing(votes, *PARAMS.as_op_arguments())
        return capsules, routed


def example_inputs(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    pre_activations = torch.randint(-300, 300, (batch, 10, 16), generator=generator, dtype=torch.int16)
    votes = torch.randint(-128, 128, (batch, 6, 10, 16), generator=generator, dtype=torch.int8)
    return pre_activations, votes


def test_ops_equal_the_reference():
    pre_activations, votes = example_inputs(3, 0)
    squashed = torch.ops.capsnet.int_squash(pre_activations, -4, 8)
    assert squashed.dtype == torch.int8
    assert torch.equal(squashed, int_squash(pre_activations, -4, 8))
    along_dim_one = torch.ops.capsnet.int_squash(pre_activations.transpose(1, 2), -4, 16, 1)
    assert along_dim_one.dtype == torch.int16
    assert torch.equal(along_dim_one, int_squash(pre_activations.transpose(1, 2), -4, 16, dim=1))
    routed = torch.ops.capsnet.int_dynamic_routing(votes.to(torch.int32), *PARAMS.as_op_arguments())
    assert routed.dtype == torch.int16  # out_bits[-1] = 12
    assert torch.equal(routed, int_dynamic_routing(votes, PARAMS))


def test_export_with_a_dynamic_batch():
    batch = torch.export.Dim("batch")
    program = torch.export.export(
        QuantizedCapsuleTail(),
        example_inputs(2, 1),
        dynamic_shapes={"pre_activations": {0: batch}, "votes": {0: batch}},
    )
    targets = {node.target for node in program.graph.nodes if node.op == "call_function"}
    assert targets == {torch.ops.capsnet.int_squash.default, torch.ops.capsnet.int_dynamic_routing.default}
    pre_activations, votes = example_inputs(5, 2)
    capsules, routed = program.module()(pre_activations, votes)
    assert torch.equal(capsules, int_squash(pre_activations, -4, 8))
    assert torch.equal(routed, int_dynamic_routing(votes, PARAMS))


def test_opcheck_schema_fake_and_dispatch():
    pre_activations, votes = example_inputs(2, 3)
    torch.library.opcheck(torch.ops.capsnet.int_squash.default, (pre_activations, -4, 8))
    torch.library.opcheck(torch.ops.capsnet.int_dynamic_routing.default, (votes, *PARAMS.as_op_arguments()))


def test_registration_is_idempotent():
    ops.library.register_ops()
    importlib.reload(ops.library)
    pre_activations, _ = example_inputs(1, 4)
    assert torch.equal(
        torch.ops.capsnet.int_squash(pre_activations, -4, 8), int_squash(pre_activations, -4, 8)
    )
