"""The user-model zoo: each style exports with a dynamic batch, and its shipped weights classify MNIST."""

import os

import pytest
import torch
from capture.user_models import ALL_STYLES, STYLES, UNSUPPORTED_STYLES, load_trained, weights_path


@pytest.fixture(scope="module")
def mnist_test():
    from capsnet_nncf_plugin.data import is_fetched, load_dataset

    if not is_fetched("mnist"):
        if os.environ.get("CI"):
            pytest.fail("MNIST is missing in CI; `make setup` fetches it")
        pytest.skip("needs MNIST: run `capsq data fetch mnist`")
    return load_dataset("mnist", "test").subset(500)


def test_registry_and_shipped_weights():
    assert len(STYLES) >= 7
    assert "input_softmax" in UNSUPPORTED_STYLES
    assert not set(STYLES) & set(UNSUPPORTED_STYLES)
    sizes = {style: weights_path(style).stat().st_size for style in ALL_STYLES}
    assert sum(sizes.values()) < 3 * 1024 * 1024, sizes
    for style in ALL_STYLES:
        state = torch.load(weights_path(style), map_location="cpu", weights_only=True)
        assert all(tensor.dtype == torch.float16 for tensor in state.values()), style


@pytest.mark.parametrize("style", list(ALL_STYLES))
def test_export_with_dynamic_batch_reproduces_outputs(style):
    model = load_trained(style)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (13, 1, 28, 28), generator=generator).float()
    program = torch.export.export(model, (images[:4],), dynamic_shapes=({0: torch.export.Dim("batch")},))
    exported = program.module()
    with torch.no_grad():
        for batch in (images[4:], images[4:5]):  # another batch size, and a single image
            torch.testing.assert_close(exported(batch), model(batch), rtol=0, atol=1e-6)


@pytest.mark.parametrize("style", list(ALL_STYLES))
def test_shipped_weights_accuracy(style, mnist_test):
    model = load_trained(style)
    with torch.no_grad():
        predictions = model(mnist_test.images.float()).argmax(dim=1)
    accuracy = (predictions == mnist_test.labels).float().mean().item()
    assert accuracy >= 0.97, f"{style}: {100 * accuracy:.1f} % on the first 500 MNIST test images"
