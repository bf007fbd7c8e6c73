import warnings

import pytest
from tiny_capsnet import tiny_capsnet, tiny_images


@pytest.fixture
def tiny_model():
    return tiny_capsnet()


@pytest.fixture
def images():
    return tiny_images()


@pytest.fixture(autouse=True)
def _quiet_torch_ao():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        yield
