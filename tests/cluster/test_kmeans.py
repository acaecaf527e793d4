"""KMeans against scikit-learn and naive computations."""

import warnings

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import euclidean_distances

import bayesdl
from bayesdl.cluster import KMeans, kmeans_plusplus
from bayesdl.cluster.kmeans import _nearest
from bayesdl.core.em import Batches
from bayesdl.datasets import make_gaussian_blobs


@pytest.fixture(scope="module")
def blobs():
    means = ((0, 0), (5, 5), (0, 6), (6, 0), (3, 3))
    X, _ = make_gaussian_blobs(500, means=means, random_state=0)
    return X


def test_kmeans_plusplus_picks_the_same_rows_as_sklearn(blobs):
    for seed in range(3):
        _, ours = kmeans_plusplus(blobs, 6, random_state=seed)
        _, ref = sk_kmeans_plusplus(blobs, 6, random_state=seed)
        np.testing.assert_array_equal(ours.numpy(), ref)


def test_lloyd_matches_sklearn_from_the_same_centres(blobs):
    init = blobs[[0, 1, 2, 3, 4, 5]]
    ref = SkKMeans(6, init=init, n_init=1, algorithm="lloyd", max_iter=300).fit(blobs)
    ours = KMeans(6, init=init, max_iter=300).fit(blobs)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-10)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-10)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.transform(blobs),
                               euclidean_distances(blobs, ref.cluster_centers_), rtol=1e-8)
    np.testing.assert_array_equal(ours.predict(blobs), ref.predict(blobs))


def test_objective_j_never_increases(blobs):
    km = KMeans(5, init=blobs[:5], tol=0.0, max_iter=30).fit(blobs)
    J = -np.asarray(km.lower_bounds_)
    assert np.all(np.diff(J) <= 1e-9)
    assert km.inertia_ <= J[-1] + 1e-9


@pytest.mark.parametrize("algorithm", ["lloyd", "hamerly"])
def test_empty_cluster_is_moved_to_the_farthest_point(blobs, algorithm):
    init = np.vstack([blobs[:4], [[1e3, 1e3]]])  # the last centre attracts no point
    km = KMeans(5, init=init, max_iter=100, algorithm=algorithm).fit(blobs)
    assert np.all(np.isfinite(km.cluster_centers_))
    assert np.all(np.bincount(km.labels_, minlength=5) > 0)
    # A naive check of the first relocation: the row farthest from its nearest centre.
    d2 = ((blobs[:, None, :] - init[None, :4]) ** 2).sum(-1).min(1)
    one_step = KMeans(5, init=init, max_iter=1, algorithm=algorithm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one_step.fit(blobs)
    np.testing.assert_allclose(one_step.cluster_centers_[4], blobs[np.argmax(d2)])


@pytest.mark.parametrize("chunk_size", [7, 64, 10_000])
def test_chunked_memmap_and_batch_fits_equal_in_memory(blobs, chunk_size, tmp_path):
    ref = KMeans(5, random_state=0).fit(blobs)
    np.save(tmp_path / "x.npy", blobs)
    sources = [blobs] if chunk_size == 7 else \
        [blobs, str(tmp_path / "x.npy"), Batches(np.array_split(blobs, 4))]
    for data in sources:
        km = KMeans(5, random_state=0, chunk_size=chunk_size).fit(data)
        np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, atol=1e-10)
        np.testing.assert_array_equal(km.labels_, ref.labels_)


def test_partial_fit_keeps_running_means(blobs):
    km = KMeans(5, random_state=0)
    first, second = blobs[:250], blobs[250:]
    km.partial_fit(first)  # seeds by k-means++ on the batch, then updates from it
    c0, _ = kmeans_plusplus(first, 5, random_state=0)
    labels1 = euclidean_distances(first, c0.numpy(), squared=True).argmin(1)
    c1 = km.cluster_centers_.copy()
    km.partial_fit(second)
    labels2 = euclidean_distances(second, c1, squared=True).argmin(1)
    for k in range(5):  # each centre: the mean of all rows assigned to it so far
        rows = np.vstack([first[labels1 == k], second[labels2 == k]])
        np.testing.assert_allclose(km.cluster_centers_[k], rows.mean(0), rtol=1e-10)
    np.testing.assert_array_equal(km.counts_, np.bincount(labels1, minlength=5)
                                  + np.bincount(labels2, minlength=5))


def test_save_load_and_errors(blobs, tmp_path):
    km = KMeans(5, random_state=0).fit(blobs)
    back = bayesdl.load(km.save(tmp_path / "km.safetensors"))
    np.testing.assert_array_equal(back.predict(blobs), km.predict(blobs))
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=5"):
        KMeans(5).fit(blobs[:3])
    with pytest.raises(ValueError, match="init must have shape"):
        KMeans(5, init=np.zeros((4, 2))).fit(blobs)


# -- Hamerly's bounds: the same iterations as Lloyd ---------------------------------------------

@pytest.fixture(scope="module")
def overlapping():
    """Overlapping clusters, so labels keep changing for many iterations near the borders."""
    rng = np.random.default_rng(0)
    means = rng.normal(scale=2.0, size=(12, 5))
    X = means[rng.integers(12, size=3000)] + rng.normal(size=(3000, 5))
    return X, X[rng.choice(3000, 10, replace=False)]


def _count_gemm_rows(monkeypatch):
    """Count the rows whose distances Hamerly's E-step recomputes (its _nearest(second=True))."""
    import bayesdl.cluster.kmeans as kmeans_module

    counted, nearest = [0], kmeans_module._nearest

    def counting(X, centers, *, second=False, **kw):
        counted[0] += X.shape[0] if second else 0
        return nearest(X, centers, second=second, **kw)

    monkeypatch.setattr(kmeans_module, "_nearest", counting)
    return counted


@pytest.mark.parametrize("chunk_size", [None, 37])
def test_hamerly_equals_lloyd_and_sklearn_lloyd(overlapping, chunk_size, monkeypatch):
    X, init = overlapping
    ref = SkKMeans(10, init=init, n_init=1, algorithm="lloyd", max_iter=300, tol=1e-6).fit(X)
    lloyd = KMeans(10, init=init, max_iter=300, tol=1e-6, algorithm="lloyd",
                   chunk_size=chunk_size).fit(X)
    counted = _count_gemm_rows(monkeypatch)
    ham = KMeans(10, init=init, max_iter=300, tol=1e-6, algorithm="hamerly",
                 chunk_size=chunk_size).fit(X)
    assert ham.n_iter_ == lloyd.n_iter_ > 10  # the bounds are carried over many iterations
    # ... and they skip most distance computations: all rows once, then few.
    assert len(X) < counted[0] < 0.5 * ham.n_iter_ * len(X)
    for other in (lloyd, ref):
        np.testing.assert_array_equal(ham.labels_, other.labels_)
        np.testing.assert_allclose(ham.cluster_centers_, other.cluster_centers_, rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(ham.inertia_, other.inertia_, rtol=1e-10)
    assert abs(ham.n_iter_ - ref.n_iter_) <= 1  # scikit-learn counts a final strict check
    # J of every E-step (from the statistics, not per-row distances) equals Lloyd's.
    np.testing.assert_allclose(ham.lower_bounds_, lloyd.lower_bounds_, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("clustered", [True, False])
def test_auto_switches_to_bounds_only_where_they_hold(clustered, monkeypatch):
    """"auto" runs Lloyd E-steps with a probe of about PROBE_ROWS rows per chunk: on data
    without clusters no chunk ever pays for a full pass of second-nearest distances (the
    first Hamerly pass, about two Lloyd passes); on clustered data every chunk switches to
    the bounds after a few iterations. Labels, centres and J stay Lloyd's either way."""
    import bayesdl.cluster.kmeans as kmeans_module

    rng = np.random.default_rng(3)
    n, d, K, chunk = 32_000, 16, 32, 8000
    means = 8.0 * rng.normal(size=(K, d))
    X = (means[rng.integers(K, size=n)] if clustered else 0.0) + rng.normal(size=(n, d))
    init = X[rng.choice(n, K, replace=False)]
    kw = dict(init=init, max_iter=15, tol=0.0, chunk_size=chunk)
    lloyd = KMeans(K, algorithm="lloyd", **kw).fit(X)
    ref = SkKMeans(K, init=init, n_init=1, algorithm="lloyd", max_iter=15, tol=0.0).fit(X)
    sizes, nearest = [], kmeans_module._nearest  # rows of each second-nearest GEMM

    def counting(X, centers, *, second=False, **kw):
        sizes.extend([X.shape[0]] if second else [])
        return nearest(X, centers, second=second, **kw)

    monkeypatch.setattr(kmeans_module, "_nearest", counting)
    auto = KMeans(K, **kw).fit(X)
    np.testing.assert_array_equal(auto.labels_, lloyd.labels_)
    np.testing.assert_array_equal(auto.labels_, ref.labels_)
    np.testing.assert_allclose(auto.cluster_centers_, lloyd.cluster_centers_, rtol=1e-10)
    np.testing.assert_allclose(auto.lower_bounds_, lloyd.lower_bounds_, rtol=1e-10)
    probe = -(-chunk // (chunk // kmeans_module.PROBE_ROWS))  # probed rows per chunk: 259
    if clustered:  # each chunk switches once (all its rows), then only a few stale rows
        assert sizes.count(chunk) == n // chunk
        assert n < sum(sizes) < n + 0.3 * auto.n_iter_ * n
    else:  # only the probed rows, less and less often: never a whole chunk
        assert set(sizes) == {probe} and len(sizes) < auto.n_iter_ * n // chunk // 2


def test_hamerly_restarts_its_bounds_for_each_init_and_warm_start(overlapping):
    X, _ = overlapping
    kw = dict(n_clusters=10, n_init=3, init="random", random_state=0, max_iter=300)
    ham = KMeans(algorithm="hamerly", **kw).fit(X)
    lloyd = KMeans(algorithm="lloyd", **kw).fit(X)
    np.testing.assert_array_equal(ham.labels_, lloyd.labels_)
    np.testing.assert_allclose(ham.cluster_centers_, lloyd.cluster_centers_, rtol=1e-10)
    # A warm start on other data (same number of chunks) must not reuse old bounds.
    for km in (ham, lloyd):
        km.set_params(warm_start=True).fit(X[::-1] + 0.5)
    np.testing.assert_array_equal(ham.labels_, lloyd.labels_)
    np.testing.assert_allclose(ham.cluster_centers_, lloyd.cluster_centers_, rtol=1e-10)


def test_hamerly_on_a_npy_file_and_in_float32(overlapping, tmp_path):
    X, init = overlapping
    np.save(tmp_path / "x.npy", X)
    lloyd = KMeans(10, init=init, algorithm="lloyd", chunk_size=500).fit(X)
    ham = KMeans(10, init=init, algorithm="hamerly", chunk_size=500).fit(tmp_path / "x.npy")
    np.testing.assert_array_equal(ham.labels_, lloyd.labels_)
    np.testing.assert_allclose(ham.cluster_centers_, lloyd.cluster_centers_, rtol=1e-10)
    X32 = X.astype(np.float32)
    kw = dict(n_clusters=10, init=init, dtype="float32", max_iter=300)
    np.testing.assert_array_equal(KMeans(algorithm="hamerly", **kw).fit(X32).labels_,
                                  KMeans(algorithm="lloyd", **kw).fit(X32).labels_)


def test_nearest_gives_the_two_smallest_distances(overlapping):
    from bayesdl.cluster.kmeans import _nearest

    X, init = overlapping
    d2 = euclidean_distances(X, init, squared=True)
    min_d2, labels, next_d2 = _nearest(torch.as_tensor(X), torch.as_tensor(init), second=True)
    np.testing.assert_array_equal(labels.numpy(), d2.argmin(1))
    np.testing.assert_allclose(min_d2.numpy(), np.sort(d2, 1)[:, 0], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(next_d2.numpy(), np.sort(d2, 1)[:, 1], rtol=1e-9)


# -- data far from the origin: distances about the data mean ----------------------------------

def _exact_assignment(X, centers):
    """Labels and squared distances from differences (no |x|^2 - 2 x^T mu + |mu|^2)."""
    d2 = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(-1)  # (N, K)
    return d2.argmin(1), d2.min(1)


@pytest.mark.parametrize("offset", [1e6, 1e7])
@pytest.mark.parametrize("algorithm", ["lloyd", "hamerly"])
def test_far_from_the_origin_inertia_and_labels_are_exact(overlapping, offset, algorithm):
    X, init = overlapping
    shift = offset * np.random.default_rng(1).uniform(0.5, 1.0, size=X.shape[1])
    km = KMeans(10, init=init + shift, algorithm=algorithm, max_iter=300).fit(X + shift)
    labels, d2 = _exact_assignment(X + shift, km.cluster_centers_)
    np.testing.assert_array_equal(km.labels_, labels)
    np.testing.assert_allclose(km.inertia_, d2.sum(), rtol=1e-10)
    np.testing.assert_array_equal(km.predict(X + shift), labels)
    np.testing.assert_allclose(-km.score(X + shift), d2.sum(), rtol=1e-10)
    # The same fit as on the unshifted data (Lloyd's iterations do not depend on the origin).
    ref = KMeans(10, init=init, algorithm=algorithm, max_iter=300).fit(X)
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    np.testing.assert_allclose(km.inertia_, ref.inertia_, rtol=1e-7)


@pytest.fixture(scope="module")
def near_ties():
    """Two mirror-image clusters about the plane x_0 = 1e7, plus 200 rows 1e-5 either side of
    it: their two squared distances differ by ~4e-5, far below the ~0.1 rounding of the
    uncentred |x|^2 - 2 x^T mu + |mu|^2 at |x| ~ 1e7."""
    rng = np.random.default_rng(3)
    left = rng.normal(size=(300, 3)) + [-1.0, 0.0, 0.0]
    ties = np.column_stack([np.full(100, -1e-5), rng.normal(size=(100, 2))])
    half = np.vstack([left, ties])
    X = np.vstack([half, half * [-1.0, 1.0, 1.0]])  # mirrored: the centres stay symmetric
    return X + 1e7


@pytest.mark.parametrize("algorithm", ["lloyd", "hamerly"])
def test_near_ties_far_from_the_origin_get_the_exact_nearest_centre(near_ties, algorithm,
                                                                    tmp_path):
    X = near_ties
    init = np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]) + 1e7
    np.save(tmp_path / "x.npy", X)
    for data in (X, tmp_path / "x.npy", Batches(np.array_split(X, 3))):
        km = KMeans(2, init=init, algorithm=algorithm, chunk_size=128).fit(data)
        labels, d2 = _exact_assignment(X, km.cluster_centers_)
        np.testing.assert_array_equal(labels[300:400], 0)  # the ties on the left side...
        np.testing.assert_array_equal(labels[700:], 1)  # ... and their mirror images
        np.testing.assert_array_equal(km.labels_, labels)
        np.testing.assert_allclose(km.inertia_, d2.sum(), rtol=1e-10)
        np.testing.assert_array_equal(km.predict(X), labels)
    sk = SkKMeans(2, init=init, n_init=1, algorithm="lloyd").fit(X)
    np.testing.assert_array_equal(km.labels_, sk.labels_)


def test_kmeans_plusplus_far_from_the_origin_equals_it_at_the_origin(blobs):
    for seed in range(3):
        _, at_origin = kmeans_plusplus(blobs, 6, random_state=seed)
        _, far = kmeans_plusplus(blobs + 1e7, 6, random_state=seed)
        np.testing.assert_array_equal(far.numpy(), at_origin.numpy())


# -- sample weights ----------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["lloyd", "hamerly"])
def test_weighted_fit_equals_sklearn_from_the_same_centres(overlapping, algorithm):
    X, init = overlapping
    w = np.random.default_rng(2).uniform(0.1, 3.0, size=len(X))
    ref = SkKMeans(10, init=init, n_init=1, algorithm="lloyd", max_iter=300,
                   tol=1e-6).fit(X, sample_weight=w)
    ours = KMeans(10, init=init, max_iter=300, tol=1e-6, algorithm=algorithm,
                  chunk_size=500).fit(X, sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-10)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-10)
    np.testing.assert_allclose(ours.score(X, sample_weight=w), ref.score(X, sample_weight=w),
                               rtol=1e-10)
    # Weighted k-means++ draws the rows scikit-learn draws.
    for seed in range(3):
        _, idx = kmeans_plusplus(X, 10, sample_weight=w, random_state=seed)
        _, ref_idx = sk_kmeans_plusplus(X, 10, sample_weight=w, random_state=seed)
        np.testing.assert_array_equal(idx.numpy(), ref_idx)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tol=0
@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_lloyd_kept_statistics_equal_a_naive_loop_iteration_by_iteration(overlapping, offset,
                                                                         monkeypatch):
    """Lloyd on an array keeps each chunk's labels and float64 sums, moves only the rows that
    changed centre, and gets J from the statistics: each iteration's J, the centres and the
    labels must equal a naive weighted Lloyd loop's (distances by differences, every row
    summed again), also far from the origin."""
    import bayesdl.cluster.kmeans as kmeans_module
    X, init = overlapping
    X, init = X + offset, init + offset
    w = np.random.default_rng(3).uniform(0.5, 2.0, size=len(X))
    moved = []  # rows moved by the kept statistics, per call
    move = kmeans_module.KMeans._move_rows
    monkeypatch.setattr(kmeans_module.KMeans, "_move_rows", lambda self, state, rows, *a:
                        moved.append(len(rows)) or move(self, state, rows, *a))
    iters = 12
    km = KMeans(10, init=init, max_iter=iters, tol=0.0, algorithm="lloyd",
                chunk_size=97).fit(X, sample_weight=w)
    C, J = init.copy(), []
    for _ in range(iters):
        d2 = ((X[:, None, :] - C[None]) ** 2).sum(-1)  # (N, K), no cancellation
        labels = d2.argmin(1)
        J.append(w @ d2[np.arange(len(X)), labels])
        C = np.stack([np.average(X[labels == k], axis=0, weights=w[labels == k])
                      for k in range(10)])
    assert sum(moved) > 0 and len(moved) == (iters - 1) * -(-len(X) // 97)
    np.testing.assert_allclose(-np.asarray(km.lower_bounds_), J, rtol=1e-10)
    np.testing.assert_allclose(km.cluster_centers_ - offset, C - offset, rtol=1e-9, atol=1e-9)
    d2 = ((X[:, None, :] - C[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(km.labels_, d2.argmin(1))


@pytest.mark.parametrize("algorithm", ["lloyd", "hamerly"])
def test_integer_weights_equal_repeated_rows(overlapping, algorithm):
    X, init = overlapping
    w = np.random.default_rng(4).integers(0, 4, size=len(X))
    kw = dict(n_clusters=10, init=init, max_iter=300, tol=0.0, algorithm=algorithm)
    weighted = KMeans(**kw).fit(X, sample_weight=w)
    repeated = KMeans(**kw).fit(np.repeat(X, w, axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-10)
    np.testing.assert_allclose(weighted.inertia_, repeated.inertia_, rtol=1e-10)
    np.testing.assert_array_equal(np.repeat(weighted.labels_, w), repeated.labels_)
    # partial_fit: the same running means as the repeated rows, batch after batch.
    pw, pr = KMeans(10, random_state=0), KMeans(10, random_state=0)
    pw.cluster_centers_ = pr.cluster_centers_ = init.copy()  # a common start
    pw.counts_, pr.counts_ = np.zeros(10), np.zeros(10)
    pw.n_features_in_ = pr.n_features_in_ = X.shape[1]
    for rows in np.array_split(np.arange(len(X)), 3):
        pw.partial_fit(X[rows], sample_weight=w[rows])
        pr.partial_fit(np.repeat(X[rows], w[rows], axis=0))
        np.testing.assert_allclose(pw.cluster_centers_, pr.cluster_centers_, rtol=1e-10)
        np.testing.assert_allclose(pw.counts_, pr.counts_)
        np.testing.assert_allclose(pw.inertia_, pr.inertia_, rtol=1e-10)


def test_sample_weight_errors(blobs, tmp_path):
    np.save(tmp_path / "x.npy", blobs)
    with pytest.raises(ValueError, match="sample_weight needs X as an in-memory array"):
        KMeans(3).fit(tmp_path / "x.npy", sample_weight=np.ones(len(blobs)))
    with pytest.raises(ValueError, match="sample_weight"):
        KMeans(3).fit(blobs, sample_weight=np.ones(3))


# -- warnings, input checks, the predictive distribution ---------------------------------------

def test_fewer_distinct_points_than_clusters_warns_as_sklearn():
    X = np.repeat([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0]], 10, axis=0)
    with pytest.warns(ConvergenceWarning,
                      match=r"Number of distinct clusters \(3\) found smaller than n_clusters "
                            r"\(4\)\. Possibly due to duplicate points in X\."):
        km = KMeans(4, random_state=0).fit(X)
    assert np.all(np.isfinite(km.cluster_centers_)) and km.inertia_ == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KMeans(3, random_state=0).fit(X)  # no warning when every cluster keeps its rows


def test_kmeans_plusplus_and_fit_refuse_sparse_input(blobs):
    sparse = scipy.sparse.csr_matrix(blobs)
    with pytest.raises(TypeError, match=r"dense data.*toarray"):
        kmeans_plusplus(sparse, 3)
    with pytest.raises(TypeError, match=r"dense data.*toarray"):
        KMeans(3).fit(sparse)


def test_predict_dist_is_the_isotropic_mixture_posterior(overlapping):
    X, init = overlapping
    km = KMeans(10, init=init).fit(X)
    n, d = X.shape
    variance = km.inertia_ / (n * d)
    np.testing.assert_allclose(km.variance_, variance, rtol=1e-14)
    Xt = X[:200] + 0.3
    logits = -euclidean_distances(Xt, km.cluster_centers_, squared=True) / (2 * variance)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    dist = km.predict_dist(Xt)
    assert isinstance(dist, torch.distributions.Categorical)
    np.testing.assert_allclose(dist.probs.numpy(), probs, rtol=1e-9, atol=1e-300)
    np.testing.assert_array_equal(dist.probs.numpy().argmax(1), km.predict(Xt))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hamerly_rounding_margin_keeps_lloyds_labels_on_near_ties(seed):
    """Rows 1e3 from the centring point whose two distances differ by less than the GEMM's
    rounding (~1e-10): after a tiny move of the centres, Lloyd's rounded distances flip some of
    them. Hamerly's test must send every such row to the GEMM (its rounding margin), so its
    labels stay Lloyd's; with the margin set to zero, tens of rows keep a stale label."""
    rng = np.random.default_rng(seed)
    base = np.array([1e3, 0.0, 0.0, 0.0])
    C1 = np.array([base - [0, 1, 0, 0], base + [0, 1, 0, 0]])  # mirror images in x_1
    X = base + rng.normal(size=(4000, 4))
    X[:, 1] = rng.uniform(-4e-10, 4e-10, size=4000)  # on the bisector, to below the rounding
    C2 = C1 + 1e-11 * rng.normal(size=C1.shape)
    km = KMeans(2, algorithm="hamerly")
    km._hamerly, km._weighted = True, False
    km._data_mean = torch.zeros(4, dtype=torch.float64)  # centre far from the rows
    state = {}
    for C in (C1, C2):  # two E-steps: the second one runs on the bounds of the first
        km._set_parameters((C,))
        stats, _ = km._e_step_stats_stateful(torch.as_tensor(X), state)
    _, lloyd = _nearest(torch.as_tensor(X), torch.as_tensor(C2), shift=km._data_mean)
    np.testing.assert_array_equal(state["labels"].numpy(), lloyd.numpy())
    np.testing.assert_array_equal(stats["counts"].numpy(), np.bincount(lloyd, minlength=2))
