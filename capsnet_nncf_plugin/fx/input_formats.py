"""The format each quantized layer reads: its producer's, and for the model input a fixed 8 bits.

``prepare_fx`` builds a layer's input observer from the layer's own qconfig, and a quantized layer narrows
its input to that width. A layer's activation bits would then also cut the tensor it reads: lowering the
first convolution to 4 bits would quantize the pixels to 4 bits, and lowering any layer would re-round
its producer's output. ``separate_input_formats`` makes a layer's activation bits mean its output only:

* the model input (an observer with no quantized layer upstream) gets its own ``input_bits``, by default 8:
  raw 8-bit pixels under the ``hardware`` clipping rule, exact;
* every layer reads the format of the observer that feeds it: its producer's output format (also through
  ops that only move elements, such as DeepCaps' ``unsqueeze`` before its first cell), or, after a float
  op such as DeepCaps' skip addition, the format torch quantizes that result to.

``quantize_fx`` and the NNCF adapter apply it; after a bare ``prepare_fx`` call it yourself (docs/fx.md).
"""

from __future__ import annotations

import torch

from capsnet_nncf_plugin.core.integer_format import check_bits
from capsnet_nncf_plugin.fx.observed import ObservedModule
from capsnet_nncf_plugin.observers import PowerOfTwoObserver
from capsnet_nncf_plugin.quantized.element_moves import value_source

#: Raw pixels carry 8 bits; an 8-bit input format with the ``hardware`` rule holds them exactly.
MODEL_INPUT_BITS = 8


def separate_input_formats(
    prepared: torch.fx.GraphModule, input_bits: int = MODEL_INPUT_BITS
) -> torch.fx.GraphModule:
    """Give the model input its own ``input_bits`` and every layer its feeder's format; before calibration."""
    check_bits(input_bits, "input_bits")
    modules = dict(prepared.named_modules())

    def module_of(node: torch.fx.Node) -> torch.nn.Module | None:
        return modules.get(str(node.target)) if node.op == "call_module" else None

    downstream_of_layer: dict[torch.fx.Node, bool] = {}
    for node in prepared.graph.nodes:  # topological order
        upstream = any(downstream_of_layer.get(source, False) for source in node.all_input_nodes)
        module = module_of(node)
        downstream_of_layer[node] = upstream or isinstance(module, ObservedModule)
        if isinstance(module, PowerOfTwoObserver) and not upstream:
            module.set_bits(input_bits)
    for node in prepared.graph.nodes:
        layer = module_of(node)
        if isinstance(layer, ObservedModule) and node.args and isinstance(node.args[0], torch.fx.Node):
            feeder = module_of(node.args[0])
            if isinstance(feeder, PowerOfTwoObserver):
                # prepare_fx observes an ``unsqueeze`` with the consumer's qconfig, but convert_fx passes
                # the quantized tensor through it untouched: the consumer reads the earlier observer's.
                observed = node.args[0].args[0] if node.args[0].args else None
                source = value_source(observed) if isinstance(observed, torch.fx.Node) else None
                if source is not None and source is not observed:
                    earlier = module_of(source)
                    feeder = earlier if isinstance(earlier, PowerOfTwoObserver) else feeder
                layer.input_bits = feeder.bits
    return prepared
