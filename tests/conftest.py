import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    """Each test starts from the same global RNG state (tests still pass explicit seeds)."""
    np.random.seed(0)
    torch.manual_seed(0)
    yield
