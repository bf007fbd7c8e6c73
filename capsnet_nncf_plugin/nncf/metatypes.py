"""Capsule ops as NNCF operator metatypes, and the patterns NNCF must leave unquantized.

NNCF 3.4 traces a torch model op by op and names each op's metatype by function name. Left alone it splits
squash and routing into primitive ops and puts dozens of quantizers inside them, and it does not know the
einsum of the vote transform, so W_ij stays float. The plugin's functional ops dispatch through
``__torch_function__`` (see :mod:`capsnet_nncf_plugin.nn.functional`), so each is one traced call; the
metatypes below give those calls meaning: squash and routing quantize their input (the pre-squash and vote
formats of the integer ops), the vote transform quantizes its input and its weight (port 1).
"""

from __future__ import annotations

from typing import ClassVar

from nncf.common.hardware.opset import HWOpName
from nncf.torch.graph import operator_metatypes as om


class PTCapsuleSquashMetatype(om.PTOperatorMetatype):
    name = "CapsuleSquashOp"
    external_op_names: ClassVar[list] = ["squash"]
    # Quantized like an elementwise multiply: one quantizer on the (pre-squash) input.
    hw_config_names: ClassVar[list] = [HWOpName.MULTIPLY]
    num_expected_input_edges = 1


class PTVoteTransformMetatype(om.PTOperatorMetatype):
    name = "CapsuleVoteTransformOp"
    external_op_names: ClassVar[list] = ["vote_transform"]
    hw_config_names: ClassVar[list] = [HWOpName.MAT_MUL]
    num_expected_input_edges = 2
    # W_ij [I, J, D_out, D_in]: NNCF's default weight axis 0 gives one scale per input capsule i, as in FX.
    weight_port_ids: ClassVar[list] = [1]


class PTDynamicRoutingMetatype(om.PTOperatorMetatype):
    name = "CapsuleDynamicRoutingOp"
    external_op_names: ClassVar[list] = ["dynamic_routing"]
    hw_config_names: ClassVar[list] = [HWOpName.MULTIPLY]
    num_expected_input_edges = 1


class PTCapsuleLengthMetatype(om.PTOperatorMetatype):
    name = "CapsuleLengthOp"
    external_op_names: ClassVar[list] = ["capsule_length"]
    num_expected_input_edges = 1


CAPSULE_METATYPES: tuple[type[om.PTOperatorMetatype], ...] = (
    PTCapsuleSquashMetatype,
    PTVoteTransformMetatype,
    PTDynamicRoutingMetatype,
    PTCapsuleLengthMetatype,
)


def register_capsule_metatypes() -> list[str]:
    """Register every plugin's capsule metatypes in NNCF's operator registry; safe to call again.

    The metatypes come through the ``capsnet_nncf_metatypes`` hook (the built-ins above included). No
    ignored pattern is needed on top: ``capsule_length`` has no hardware-config name, so NNCF never
    quantizes the class capsules again, and every other quantizer NNCF places has a counterpart in the
    integer model (the adapter reports any that does not). Returns the names registered by this call.
    """
    from capsnet_nncf_plugin.plugins import collect

    registry = om.PT_OPERATOR_METATYPES
    registered = []
    for name, metatype in collect("capsnet_nncf_metatypes").items():
        if name not in registry.registry_dict:
            registry.register(name)(metatype)
            registered.append(name)
    return registered
