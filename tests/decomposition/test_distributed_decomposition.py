"""A 2-process torch.distributed (gloo, CPU) fit on two shards equals the 1-process fit."""

import warnings

import numpy as np
import torch.distributed as dist

from bayesdl.core import distributed
from bayesdl.decomposition import PCA, FactorAnalysis, ProbabilisticPCA

from tests._distributed import assert_ranks_equal_single, fits_on_two_ranks

from ._data import low_rank, with_missing


def _data():
    X, _ = low_rank(n=301, d=6, q=2)
    return X, with_missing(X, 0.2)[0]


def _fits(X, Xm):
    models = [(PCA(3), X), (ProbabilisticPCA(2), X),
              (ProbabilisticPCA(2, solver="em", max_iter=8, tol=0.0, chunk_size=16), Xm),
              (FactorAnalysis(2, max_iter=8, tol=0.0), Xm)]
    out = []
    for model, data in models:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(data)
        names = ("components_", "mean_", "noise_variance_", "explained_variance_",
                 "lower_bounds_")
        out.append({n: np.asarray(getattr(model, n)) for n in names if hasattr(model, n)})
    return out


def _worker(rank, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        X, Xm = _data()
        rows = distributed.shard(len(X))  # this rank's rows only
        out[rank] = _fits(X[rows], Xm[rows])
    finally:
        dist.destroy_process_group()


def test_two_process_fit_equals_single_process_fit():
    single = _fits(*_data())
    assert_ranks_equal_single(fits_on_two_ranks(_worker), single, rtol=1e-10)
