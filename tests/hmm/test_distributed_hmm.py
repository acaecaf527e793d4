"""2-process torch.distributed (gloo) Baum-Welch and LDS EM, each rank holding half of the
sequences, equal the 1-process fits (1e-10)."""

import warnings

import numpy as np
import pytest
import torch.distributed as dist

from bayesdl.hmm import GaussianHMM
from bayesdl.state_space import LinearGaussianStateSpace
from tests._distributed import assert_ranks_equal_single, fits_on_two_ranks

LENGTHS = [30, 45, 25, 50, 40, 35]


def _data():
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.randn(110, 2), rng.randn(115, 2) + 3])
    X[rng.rand(*X.shape) < 0.05] = np.nan
    return X


def _models():
    hmm = GaussianHMM(3, covariance_type="full", init_params="", n_iter=8, tol=0)
    hmm.startprob_ = np.array([0.5, 0.3, 0.2])
    hmm.transmat_ = np.full((3, 3), 1 / 3)
    hmm.means_ = np.array([[0.0, 0.0], [3.0, 3.0], [1.0, 2.0]])
    hmm.covars_ = np.tile(np.eye(2), (3, 1, 1))
    lds = LinearGaussianStateSpace(n_dim_state=1, em_vars="all", n_iter=8, tol=0,
                                   observation_matrices=[[1.0], [0.5]])
    return [hmm, lds]


def _fitted(model, X, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, lengths)
    return {k: np.asarray(v) for k, v in vars(model).items()
            if k.endswith("_") and not k.startswith("_") and k != "lower_bounds_"
            and isinstance(v, (np.ndarray, float))}


def _worker(rank, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        X = _data()
        split = sum(LENGTHS[:3])  # rank 0: the first three sequences, rank 1 the rest
        X_rank, lengths = (X[:split], LENGTHS[:3]) if rank == 0 else (X[split:], LENGTHS[3:])
        out[rank] = [_fitted(m, X_rank, lengths) for m in _models()]
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned interpreters importing torch: ~60 s on a busy 2-core machine
def test_two_process_fit_equals_single_process_fit():
    X = _data()
    single = [_fitted(m, X, LENGTHS) for m in _models()]
    assert all(len(ref) >= 4 for ref in single)
    assert_ranks_equal_single(fits_on_two_ranks(_worker), single)
