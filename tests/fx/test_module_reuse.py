"""SharedCalibration(share_modules=True): candidates share the quantized modules of unchanged layers."""

import warnings
import weakref

import pytest
import torch
from tiny_capsnet import tiny_capsnet, tiny_deepcaps, tiny_images

from capsnet_nncf_plugin.allocation import quantizable_layers
from capsnet_nncf_plugin.core import BitAllocation
from capsnet_nncf_plugin.fx import SharedCalibration, quantize_fx
from capsnet_nncf_plugin.fx.module_reuse import ModuleReuse, active_module_reuse
from capsnet_nncf_plugin.quantized.modules import QuantizedModule


def quantized_modules(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {name: module for name, module in model.named_modules() if isinstance(module, QuantizedModule)}


@pytest.fixture
def quiet():
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("build", [tiny_capsnet, tiny_deepcaps], ids=["shallowcaps", "deepcaps"])
def test_a_changed_layer_rebuilds_itself_and_its_consumer_only(build, quiet):
    model = build()
    images = tiny_images(32, seed=3)
    shared = SharedCalibration(model, [images], share_modules=True)
    names = [layer.name for layer in quantizable_layers(model)]
    base = BitAllocation.uniform(names)
    first = shared.quantize(base)
    # The first layer's weights at 4 bits: its module changes, every other is the base's own object.
    changed = shared.quantize(base.with_layer(names[0], weight=4))
    before, after = quantized_modules(first), quantized_modules(changed)
    assert before.keys() == after.keys()
    rebuilt = {name for name in before if before[name] is not after[name]}
    assert rebuilt == {names[0]}
    # Its activations at 5 bits: its output format changes, and so does the input width of what reads it.
    narrowed = quantized_modules(shared.quantize(base.with_layer(names[0], activation=5)))
    rebuilt = {name for name in before if before[name] is not narrowed[name]}
    assert names[0] in rebuilt and 2 <= len(rebuilt) < len(before)
    probe = tiny_images(8, seed=4)
    expected = quantize_fx(model, [images], allocation=base.with_layer(names[0], activation=5))
    assert torch.equal(shared.quantize(base.with_layer(names[0], activation=5))(probe), expected(probe))


def test_models_without_sharing_own_their_modules(quiet):
    model = tiny_capsnet()
    images = tiny_images(16, seed=5)
    shared = SharedCalibration(model, [images])
    names = [layer.name for layer in quantizable_layers(model)]
    first, second = (shared.quantize(BitAllocation.uniform(names)) for _ in range(2))
    assert shared.module_reuse is None
    for name, module in quantized_modules(first).items():
        assert quantized_modules(second)[name] is not module


def test_reuse_is_active_inside_its_block_only():
    reuse = ModuleReuse()
    assert active_module_reuse() is None
    with reuse.active():
        assert active_module_reuse() is reuse
    assert active_module_reuse() is None


def test_tensor_arguments_count_by_identity_and_are_held():
    reuse = ModuleReuse()
    codes = torch.tensor([1, 2, 3])
    same_values = codes.clone()
    built = [reuse.get("layer", (codes, {"output": 4}), torch.nn.Identity) for _ in range(2)]
    other = reuse.get("layer", (same_values, {"output": 4}), torch.nn.Identity)
    assert built[0] is built[1] and other is not built[0]
    assert (reuse.built, reuse.reused) == (2, 1)
    # The entry holds its tensor, so that no new tensor can take its id while the entry exists.
    kept = weakref.ref(codes)
    del codes
    assert kept() is not None
