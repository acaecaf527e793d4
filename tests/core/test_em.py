"""The EM driver's data handling and the linear-algebra helpers."""

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from bayesdl.core.em import Batches, Candidates, DataSource, accumulate
from bayesdl.core.linalg import (cholesky, inverse_cholesky_transpose, jittered_cholesky,
                                 log_normalize, logdet_from_cholesky)


def test_batches_need_reiterable_data():
    with pytest.raises(ValueError, match="one-shot iterator"):
        Batches(x for x in [np.zeros((2, 2))])
    arrays = [np.ones((3, 2)), np.zeros((4, 2))]
    for batches in (Batches(arrays), Batches(lambda: iter(arrays))):
        data = DataSource(batches, dtype=torch.float64, device=torch.device("cpu"), chunk_size=2)
        assert [c.shape[0] for c in data] == [2, 1, 2, 2]
        assert [c.shape[0] for c in data] == [2, 1, 2, 2]  # a second pass reads it again


def test_batches_of_reversed_views_are_read_as_their_values():
    X = np.arange(20.0).reshape(10, 2)
    data = DataSource(Batches([X[::-1], X[:, ::-1]]), dtype=torch.float64,
                      device=torch.device("cpu"))
    chunks = [c.numpy() for c in data]
    np.testing.assert_array_equal(np.vstack(chunks), np.vstack([X[::-1], X[:, ::-1]]))


def test_default_chunks_of_an_array_are_evened_out_and_blas_follows_torch_threads():
    from threadpoolctl import threadpool_info

    cpu = torch.device("cpu")
    X = np.zeros((1000, 4))
    # 1024 values a chunk would be 256-row chunks, the last one 232 rows: 4 chunks of 250.
    sizes = [c.shape[0] for c in DataSource(X, dtype=torch.float64, device=cpu,
                                            chunk_elements=1024)]
    assert sizes == [250] * 4
    # A chunk size given by the user is kept.
    sizes = [c.shape[0] for c in DataSource(X, dtype=torch.float64, device=cpu, chunk_size=256)]
    assert sizes == [256] * 3 + [232]
    # With torch on one thread the chunks' BLAS calls run on one thread too.
    seen = []

    def blas_threads(chunk):
        seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        return {}, chunk.new_zeros(())

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        accumulate(DataSource(X, dtype=torch.float64, device=cpu, chunk_size=500), blas_threads)
    finally:
        torch.set_num_threads(previous)
    assert seen and set(seen) == {1}


def test_accumulate_sums_in_float64_and_merges_candidates():
    rng = np.random.RandomState(0)
    X = rng.randn(1000, 3).astype(np.float32)
    data = DataSource(X, dtype=torch.float32, device=torch.device("cpu"), chunk_size=37)
    scores = np.abs(X).sum(1)

    def stats(chunk):
        s = chunk.abs().sum(1)
        return {"sum": chunk.sum(0), "top": Candidates.top(s, chunk, 5)}, s.sum()

    totals, total_score, n = accumulate(data, stats)
    assert n == 1000 and totals["sum"].dtype == torch.float64
    np.testing.assert_allclose(totals["sum"].numpy(), X.astype(np.float64).sum(0), rtol=1e-6)
    np.testing.assert_allclose(float(total_score), scores.astype(np.float64).sum(), rtol=1e-6)
    best = np.argsort(-scores)[:5]
    np.testing.assert_allclose(totals["top"].rows.numpy(), X[best])


@pytest.mark.parametrize("parallel", [True, False])
def test_accumulate_gives_each_chunk_its_own_state_on_every_pass(parallel):
    X = np.arange(200.0).reshape(100, 2)
    data = DataSource(X, dtype=torch.float64, device=torch.device("cpu"), chunk_size=9)
    assert data.replayable and not DataSource(Batches([X]), dtype=torch.float64,
                                              device=torch.device("cpu")).replayable

    def count_visits(chunk, state):  # remembers its chunk's first row and the visits
        state.setdefault("first_row", chunk[0].clone())
        torch.testing.assert_close(state["first_row"], chunk[0])
        state["visits"] = state.get("visits", 0) + 1
        return {"visits": torch.tensor(float(state["visits"]))}, chunk.new_zeros(())

    states: list = []
    for visit in (1, 2, 3):
        totals, _, n = accumulate(data, count_visits, parallel=parallel, states=states)
        assert n == 100 and len(states) == 12  # ceil(100 / 9) chunks
        assert float(totals["visits"]) == 12 * visit
    np.testing.assert_array_equal(torch.stack([s["first_row"] for s in states]).numpy(),
                                  X[::9])


def test_memory_mapped_source_reads_chunks_and_checks_them(tmp_path):
    X = np.arange(20.0).reshape(10, 2)
    np.save(tmp_path / "x.npy", X)
    data = DataSource(str(tmp_path / "x.npy"), dtype=torch.float64,
                      device=torch.device("cpu"), chunk_size=4)
    np.testing.assert_array_equal(torch.cat(list(data)).numpy(), X)
    np.testing.assert_array_equal(data.take([7, 2]).numpy(), X[[7, 2]])
    with pytest.raises(ValueError, match="only .npy files"):
        DataSource(str(tmp_path / "x.csv"), dtype=torch.float64, device=torch.device("cpu"))
    np.save(tmp_path / "y.npy", np.zeros(5))
    with pytest.raises(ValueError, match="2-D numeric array"):
        DataSource(str(tmp_path / "y.npy"), dtype=torch.float64, device=torch.device("cpu"))


def test_linalg_helpers():
    rng = np.random.RandomState(0)
    A = rng.randn(4, 4)
    S = torch.as_tensor(A @ A.T + np.eye(4))
    L = cholesky(S, error="bad")
    np.testing.assert_allclose(logdet_from_cholesky(L).item(), np.linalg.slogdet(S.numpy())[1])
    U = inverse_cholesky_transpose(L)
    np.testing.assert_allclose((U @ U.T).numpy(), np.linalg.inv(S.numpy()), atol=1e-10)
    singular = torch.ones(2, 3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"increase it \(matrix \[0, 1\]\)"):
        cholesky(singular, error="increase it")
    rank_deficient = torch.as_tensor(np.outer([1.0, 2, 3], [1.0, 2, 3]))
    Lj = jittered_cholesky(rank_deficient)
    assert torch.all(torch.isfinite(Lj))
    np.testing.assert_allclose((Lj @ Lj.T).numpy(), rank_deficient.numpy(), atol=1e-6)
    a = torch.as_tensor([[0.0, 1.0, -2.0], [-np.inf, -np.inf, -np.inf]])
    norm, log_p = log_normalize(a)
    np.testing.assert_allclose(norm[0].item(), logsumexp([0.0, 1.0, -2.0]))
    assert norm[1].item() == -np.inf and not torch.isnan(log_p).any()


@pytest.mark.parametrize("family", ["kmeans", "gmm"])
def test_n_init_keeps_the_run_whose_final_parameters_are_best(family):
    """Runs stopped early (max_iter=1) differ between their last E-step's bound and the bound
    of their final parameters: the engine must rank them by the latter."""
    import warnings

    from sklearn.datasets import make_blobs

    from bayesdl.cluster import KMeans
    from bayesdl.mixture import GaussianMixture

    X, _ = make_blobs(300, centers=6, n_features=4, cluster_std=2.5, random_state=0)

    def model(**kw):
        if family == "kmeans":
            return KMeans(6, max_iter=1, **kw)
        return GaussianMixture(6, max_iter=1, init_params="random_from_data", **kw)

    def final_objective(m):  # of the final parameters, computed from scratch
        if family == "kmeans":
            return -((X[:, None, :] - m.cluster_centers_[None]) ** 2).sum(-1).min(1).sum()
        return m.score(X)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The same draws as the n_init=6 fit: one RandomState consumed run after run.
        rng = np.random.RandomState(0)
        runs = [final_objective(model(random_state=rng).fit(X)) for _ in range(6)]
        best = model(n_init=6, random_state=0).fit(X)
    np.testing.assert_allclose(final_objective(best), max(runs), rtol=1e-12)
    # The last E-step's bound would have picked another run (what this test guards).
    assert final_objective(best) > min(runs)
