"""value_source: the node whose values reach another through reshapes, permutes and unsqueezes only."""

import torch

from capsnet_nncf_plugin.quantized.element_moves import moves_elements_only, value_source


class Moves(torch.nn.Module):
    def forward(self, x):
        y = torch.relu(x)
        moved = torch.flatten(y.unsqueeze(1).permute(0, 2, 1, 3), 1).reshape(x.shape[0], -1)
        return moved + 1


def test_value_source_skips_element_moves_and_stops_at_arithmetic():
    nodes = {node.name: node for node in torch.fx.symbolic_trace(Moves()).graph.nodes}
    assert [name for name, node in nodes.items() if moves_elements_only(node)] == [
        "unsqueeze",
        "permute",
        "flatten",
        "reshape",
    ]
    assert value_source(nodes["reshape"]) is nodes["relu"]
    assert value_source(nodes["add"]) is nodes["add"]
    assert value_source(nodes["relu"]) is nodes["relu"]
