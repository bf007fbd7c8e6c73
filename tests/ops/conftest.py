"""Fixtures of the integer-op tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def single_intra_op_thread():
    """Run the int64 kernels on one thread: these small tensors gain nothing from a second one, and on a
    shared 2-core machine thread hand-offs made them 10-70x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
