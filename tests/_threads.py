"""Shared fixture: the Bayesian deep learning tests use tiny tensors, where one torch
intra-op thread is fastest (and avoids contention on shared cores)."""

import pytest

from bayesdl.train import torch_threads


@pytest.fixture(autouse=True)
def one_torch_thread():
    with torch_threads(1):
        yield
