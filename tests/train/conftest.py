import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """These tests use tiny tensors: one intra-op thread avoids contention on shared cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
