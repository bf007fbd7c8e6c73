import warnings

import pytest


@pytest.fixture(autouse=True)
def _quiet():
    """torch.ao's deprecation notices and the quantized-op warnings of every evaluation, silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
