"""Intra-op thread control: small networks and whole-chunk worker threads run best on one."""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch intra-op threads, restoring the previous number after.

    Tabular-sized networks run fastest on one thread: their matrix products are too small to
    split, and on shared cores extra threads mostly wait for each other.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
