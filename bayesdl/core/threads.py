"""Intra-op thread control: small networks and whole-chunk worker threads run best on one."""

from __future__ import annotations

import functools
from contextlib import contextmanager

import torch
from threadpoolctl import ThreadpoolController


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


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """One scan of the loaded BLAS libraries (each scan takes ~10 ms)."""
    return ThreadpoolController()


def blas_threads(n: int):
    """Context manager: the BLAS libraries threadpoolctl sees (numpy's and scipy's OpenBLAS)
    run on ``n`` threads inside the block; torch's own threads are set by :func:`torch_threads`."""
    return _blas_controller().limit(limits=int(n), user_api="blas")
