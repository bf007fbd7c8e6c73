import pytest
import torch

from capsnet_nncf_plugin.models import DeepCaps, ShallowCaps, available_models, create
from capsnet_nncf_plugin.nn import capsule_length


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_shallowcaps_parameter_count_is_sabour_et_al_exactly():
    model = create("shallowcaps")
    assert isinstance(model, ShallowCaps)
    assert parameter_count(model.conv1) == 20_992
    assert parameter_count(model.primary_caps) == 5_308_672
    assert parameter_count(model.class_caps) == 1_474_560
    assert parameter_count(model) == 6_804_224
    assert parameter_count(create("shallowcaps", class_bias=True)) == 6_804_224 + 160


def test_shallowcaps_decoder_is_512_1024_784():
    model = create("shallowcaps", decoder=True)
    sizes = [layer.out_features for layer in model.decoder.layers if isinstance(layer, torch.nn.Linear)]
    assert sizes == [512, 1024, 784]
    assert parameter_count(model) - 6_804_224 == 160 * 512 + 512 + 512 * 1024 + 1024 + 1024 * 784 + 784


@pytest.mark.parametrize(
    ("name", "channels", "size", "capsule_dim", "class_inputs"),
    [
        ("shallowcaps", 1, 28, 16, 1152),
        ("shallowcaps", 3, 32, 16, 2048),
        ("deepcaps", 1, 28, 32, 32 * (16 + 4)),
        ("deepcaps", 3, 32, 32, 32 * (16 + 4)),
        ("deepcaps", 3, 64, 32, 32 * (64 + 16)),
    ],
)
def test_forward_shapes(name, channels, size, capsule_dim, class_inputs):
    model = create(name, in_channels=channels, image_size=size).eval()
    assert model.class_caps.votes.in_capsules == class_inputs
    images = torch.randint(0, 256, (2, channels, size, size)).float()
    scores = model(images)
    capsules = model.class_capsules(images)
    assert scores.shape == (2, 10)
    assert capsules.shape == (2, 10, capsule_dim)
    torch.testing.assert_close(scores, capsule_length(capsules))
    assert ((scores >= 0) & (scores < 1)).all()


def test_deepcaps_structure():
    model = create("deepcaps", in_channels=3, image_size=64)
    assert isinstance(model, DeepCaps)
    assert model.stem_bn.momentum == pytest.approx(0.01)  # Keras momentum 0.99
    assert type(model.cell4.skip).__name__ == "ConvCaps3d"
    assert all(type(getattr(model, f"cell{i}").skip).__name__ == "ConvCaps2d" for i in (1, 2, 3))
    # Paper: 13.4M parameters at 64x64 (the class capsules 2560 x 10 x 32 x 8 alone are 6.55M).
    assert parameter_count(model.class_caps) == 2560 * 10 * 32 * 8
    assert 13.2e6 < parameter_count(model) < 13.5e6


def test_reconstruction_on_request():
    model = create("deepcaps", decoder=True).eval()
    images = torch.randint(0, 256, (3, 1, 28, 28)).float()
    reconstruction = model.reconstruct(model.class_capsules(images), torch.tensor([1, 2, 3]))
    assert reconstruction.shape == (3, 1, 28, 28)
    assert ((reconstruction >= 0) & (reconstruction <= 1)).all()
    with pytest.raises(RuntimeError, match="decoder=True"):
        create("deepcaps").reconstruct(torch.zeros(1, 10, 32))
    assert model.without_decoder().decoder is None and model.config["decoder"] is False


def test_create_rejects_unknown_names_and_options():
    assert available_models() == ["deepcaps", "shallowcaps"]
    with pytest.raises(ValueError, match=r"unknown model 'resnet'.*deepcaps, shallowcaps"):
        create("resnet")
    with pytest.raises(ValueError, match="bad option"):
        create("shallowcaps", width=3)
    with pytest.raises(ValueError, match="at least 25x25"):
        create("shallowcaps", image_size=20)


def test_config_rebuilds_the_same_architecture():
    model = create("shallowcaps", in_channels=3, image_size=32, class_bias=True)
    clone = create(model.name, **model.config)
    assert parameter_count(clone) == parameter_count(model)
