"""Session-wide test settings."""

import os

import pytest
import torch

# NNCF compiles a C++ extension on first use (about a minute on 2 cores, more when the machine is busy)
# and gives up after 60 s by default; a slow first compile is not a test failure.
os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "900")


@pytest.fixture(autouse=True)
def fresh_reuse_folder(tmp_path_factory, monkeypatch):
    """Every test's jobs keep their reused measurements in a folder of their own: a test must not pass or
    fail by what an earlier test, or an earlier run, left in the plugin's cache."""
    from capsnet_nncf_plugin.job import reuse

    folder = tmp_path_factory.mktemp("reuse")
    monkeypatch.setattr(reuse, "automatic_folder", lambda: folder)


@pytest.fixture(scope="session")
def untrained_mnist_checkpoint(tmp_path_factory):
    """An untrained ShallowCaps checkpoint for MNIST: CLI jobs under test, not accuracy."""
    from capsnet_nncf_plugin.data import is_fetched
    from capsnet_nncf_plugin.models import create, save_checkpoint

    if not is_fetched("mnist"):
        if os.environ.get("CI"):
            pytest.fail("MNIST is missing in CI; `make setup` fetches it")
        pytest.skip("needs MNIST: run `capsq data fetch mnist`")
    torch.manual_seed(0)
    return save_checkpoint(
        tmp_path_factory.mktemp("checkpoint") / "model.pt", create("shallowcaps"), {"dataset": "mnist"}
    )
