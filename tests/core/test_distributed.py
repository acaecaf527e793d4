"""A 2-process torch.distributed (gloo, CPU) fit on two shards equals the 1-process fit."""

import warnings

import numpy as np
import torch
import torch.distributed as dist
from sklearn.datasets import load_wine

from bayesdl.cluster import KMeans
from bayesdl.core import distributed
from bayesdl.core.em import Batches
from bayesdl.datasets import make_gaussian_blobs
from bayesdl.linear_model import BayesianLogisticRegression
from bayesdl.mixture import GaussianMixture
from tests._distributed import assert_ranks_equal_single, fits_on_two_ranks


def _data():
    X, _ = make_gaussian_blobs(301, means=((0, 0, 0), (4, 4, 0), (0, 5, 3)), random_state=0)
    return X


def _models(X):
    init = dict(weights_init=[0.2, 0.3, 0.5], means_init=X[[0, 100, 200]])
    return [GaussianMixture(3, max_iter=50, tol=0.0, chunk_size=16, **init),
            GaussianMixture(3, covariance_type="diag", max_iter=50, tol=0.0, **init),
            KMeans(3, init=X[[0, 100, 200]], max_iter=50, tol=0.0),  # Hamerly's bounds per rank
            KMeans(3, init=X[[0, 100, 200]], max_iter=50, tol=0.0, chunk_size=16,
                   algorithm="lloyd")]


def _fitted(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    names = ("weights_", "means_", "covariances_", "cluster_centers_", "lower_bound_")
    return {n: np.asarray(getattr(model, n)) for n in names if hasattr(model, n)}


def _logistic(rows: slice) -> list:
    """BayesianLogisticRegression on wine's ``rows``, in memory and streamed: wine is sorted
    by class, so each of two shards lacks a class and the classes must be every rank's."""
    X, y = load_wine(return_X_y=True)
    X, y = ((X - X.mean(0)) / X.std(0))[rows], y[rows]
    fits = [BayesianLogisticRegression(alpha=1.0).fit(X, y),
            BayesianLogisticRegression(alpha=1.0, chunk_size=16).fit(Batches([np.c_[X, y]]))]
    return [{"classes_": m.classes_, "coef_": m.coef_, "covariance_": m.covariance_}
            for m in fits]


def _worker(rank, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        X = _data()
        shard = X[distributed.shard(len(X))]  # this rank's rows only
        out[rank] = ([_fitted(m, shard) for m in _models(X)]
                     + _logistic(distributed.shard(len(load_wine().target))))
    finally:
        dist.destroy_process_group()


def test_two_process_fit_equals_single_process_fit():
    X = _data()
    single = [_fitted(m, X) for m in _models(X)] + _logistic(slice(None))
    assert_ranks_equal_single(fits_on_two_ranks(_worker), single)


def test_helpers_are_identities_without_a_process_group():
    t = [torch.arange(3.0)]
    assert distributed.all_reduce_sum(t) is t
    assert distributed.shard(10) == slice(0, 10)
    assert distributed.world_size() == 1 and distributed.rank() == 0
