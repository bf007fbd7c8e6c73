"""Fingerprints: the same for the same content, different for any change a measurement depends on."""

import importlib.util
import sys

import torch

from capsnet_nncf_plugin.fingerprint import model_code_digest, tensor_digest
from tests.tiny_capsnet import tiny_capsnet

MODEL_SOURCE = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.linear(x) * {factor}
"""


def load_net(path, factor: int) -> torch.nn.Module:
    path.write_text(MODEL_SOURCE.format(factor=factor))
    spec = importlib.util.spec_from_file_location(f"user_net_{factor}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        return module.Net()
    finally:
        del sys.modules[spec.name]


def test_tensor_digests_see_names_shapes_dtypes_and_values():
    values = torch.arange(6, dtype=torch.float32)
    base = tensor_digest([("a", values)])
    assert tensor_digest([("a", values.clone())]) == base
    changed = values.clone()
    changed[3] = 3.0000002
    for other in ([("b", values)], [("a", values.view(2, 3))], [("a", values.double())], [("a", changed)]):
        assert tensor_digest(other) != base
    assert tensor_digest([("mask", torch.tensor([True, False]))]) != tensor_digest(
        [("mask", torch.tensor([False, True]))]
    )


def test_editing_a_model_file_changes_its_code_digest(tmp_path):
    first = load_net(tmp_path / "net.py", factor=2)
    again = load_net(tmp_path / "net.py", factor=2)
    edited = load_net(tmp_path / "net.py", factor=3)  # the same weights' shapes, another forward
    assert model_code_digest(first) == model_code_digest(again)
    assert model_code_digest(edited) != model_code_digest(first)
    assert model_code_digest(tiny_capsnet()) == model_code_digest(tiny_capsnet(seed=1))


def test_a_traced_graph_digests_its_generated_code():
    model = tiny_capsnet()
    traced = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.ReLU()))
    other = torch.fx.symbolic_trace(torch.nn.Sequential(torch.nn.Tanh()))
    assert model_code_digest(traced) != model_code_digest(other)
    assert model_code_digest(model) != model_code_digest(traced)
