"""Run a 2-process torch.distributed (gloo, CPU) fit and compare each rank with one process."""

import contextlib
import socket

import numpy as np
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gloo_group(rank: int, port: int):
    """Inside a worker: this rank's 2-process gloo group, destroyed on exit."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        yield
    finally:
        dist.destroy_process_group()


def fits_on_two_ranks(worker) -> dict:
    """``{rank: out[rank]}`` after ``worker(rank, port, out)`` ran on 2 spawned processes."""
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(worker, args=(_free_port(), out), nprocs=2, join=True)
        return dict(out)


def assert_ranks_equal_single(results: dict, single: list, *, rtol=0.0, atol=1e-10) -> None:
    """Every rank's fitted attributes (a list of dicts, one per model) equal the 1-process ones."""
    for rank in (0, 1):
        for ours, ref in zip(results[rank], single, strict=True):
            assert ours.keys() == ref.keys()
            for name in ref:
                np.testing.assert_allclose(ours[name], ref[name], rtol=rtol, atol=atol,
                                           err_msg=name)
