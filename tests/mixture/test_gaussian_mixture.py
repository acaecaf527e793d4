"""GaussianMixture against scikit-learn, scipy naive loops and its own invariances."""

import warnings

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import bayesdl
from bayesdl.core.em import Batches
from bayesdl.datasets import make_gaussian_blobs
from bayesdl.mixture import GaussianMixture
from bayesdl.mixture._suffstats import COVARIANCE_TYPES, precision_cholesky

MEANS3 = ((0.0, 0.0, 0.0), (4.0, 4.0, 0.0), (0.0, 5.0, 3.0))


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.RandomState(0)
    covs = np.stack([np.eye(3) + 0.3 * (a := rng.randn(3, 3)) @ a.T for _ in range(3)])
    X, _ = make_gaussian_blobs(400, means=MEANS3, covariances=covs, random_state=0)
    return X + np.array([10.0, -20.0, 5.0])  # away from the origin, to exercise the shift


def _precisions(gm):
    U = gm.precisions_cholesky_
    return U**2 if gm.covariance_type in ("diag", "spherical") else U @ np.swapaxes(U, -1, -2)


def _initial_parameters(X, covariance_type):
    """A deliberately rough starting point: sklearn's state after a random initialisation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = SkGaussianMixture(3, covariance_type=covariance_type, init_params="random",
                                  max_iter=0, random_state=1).fit(X)
    return dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=_precisions(start))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_matches_sklearn_from_identical_initial_parameters(blobs, covariance_type):
    init = _initial_parameters(blobs, covariance_type)
    kw = dict(n_components=3, covariance_type=covariance_type, max_iter=10, tol=0.0, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkGaussianMixture(**kw).fit(blobs)
        ours = GaussianMixture(**kw).fit(blobs)
    assert ours.n_iter_ == ref.n_iter_ == 10
    np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=1e-10)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-10,
                                   atol=1e-12, err_msg=name)
    np.testing.assert_allclose(ours.score_samples(blobs), ref.score_samples(blobs), rtol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(blobs), ref.predict_proba(blobs), atol=1e-10)
    np.testing.assert_allclose(ours.bic(blobs), ref.bic(blobs), rtol=1e-10)
    np.testing.assert_allclose(ours.aic(blobs), ref.aic(blobs), rtol=1e-10)


@pytest.mark.parametrize("init_params", ["random", "random_from_data"])
def test_random_initialisations_match_sklearn_for_the_same_seed(blobs, init_params):
    kw = dict(n_components=3, init_params=init_params, random_state=7, max_iter=5, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SkGaussianMixture(**kw).fit(blobs)
        ours = GaussianMixture(**kw).fit(blobs)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_likelihood_never_decreases(blobs, covariance_type):
    # As scikit-learn tests it: one EM step per fit with warm_start.
    gm = GaussianMixture(4, covariance_type=covariance_type, warm_start=True, max_iter=1,
                         init_params="random", random_state=0, tol=0.0)
    bounds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(30):
            bounds.append(gm.fit(blobs).lower_bound_)
    assert np.all(np.diff(bounds) >= -1e-12), np.diff(bounds).min()
    assert bounds[-1] > bounds[0]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_vectorised_e_step_equals_naive_scipy_loop(blobs, covariance_type):
    X = blobs[::8]
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(blobs)
    K, D = gm.means_.shape
    covs = gm._to_numpy(gm._full_covariances())
    log_joint = np.empty((len(X), K))
    for n, x in enumerate(X):  # per point, per component
        for k in range(K):
            log_joint[n, k] = np.log(gm.weights_[k]) + multivariate_normal(
                gm.means_[k], covs[k]).logpdf(x)
    log_px = np.logaddexp.reduce(log_joint, axis=1)
    np.testing.assert_allclose(gm.score_samples(X), log_px, rtol=1e-10)
    np.testing.assert_allclose(gm.predict_proba(X), np.exp(log_joint - log_px[:, None]),
                               atol=1e-10)


def _fit(X, **kw):
    return GaussianMixture(3, random_state=0, tol=1e-8, max_iter=200, **kw).fit(X)


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
def test_chunked_fit_equals_in_memory_fit(blobs, chunk_size):
    full = _fit(blobs, chunk_size=len(blobs))
    chunked = _fit(blobs, chunk_size=chunk_size)
    assert chunked.n_iter_ == full.n_iter_
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(full, name), rtol=0,
                                   atol=1e-10, err_msg=name)
    np.testing.assert_allclose(chunked.lower_bound_, full.lower_bound_, rtol=1e-12)


def test_memmap_and_batches_equal_array_fit(blobs, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, blobs)
    ref = _fit(blobs, chunk_size=50)
    from_file = _fit(str(path), chunk_size=50)
    from_batches = _fit(Batches(np.array_split(blobs, 9)), chunk_size=50)
    for other in (from_file, from_batches):
        assert other.n_features_in_ == 3
        np.testing.assert_allclose(other.means_, ref.means_, atol=1e-10)
        np.testing.assert_allclose(other.covariances_, ref.covariances_, atol=1e-10)
        np.testing.assert_allclose(other.lower_bound_, ref.lower_bound_, rtol=1e-12)


@pytest.mark.parametrize("estimator", ["GaussianMixture", "BayesianGaussianMixture"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_cached_features_give_exactly_the_streamed_fit(blobs, tmp_path, monkeypatch, estimator,
                                                       covariance_type):
    # An in-memory fit computes each chunk's features once and reuses them; a fit with no
    # cache budget, and a fit from a .npy file, recompute them at every E-step.
    from bayesdl.mixture import _base, _suffstats

    calls = []
    features = _suffstats.features
    monkeypatch.setattr(_suffstats, "features", lambda *a: calls.append(1) or features(*a))
    path = tmp_path / "x.npy"
    np.save(path, blobs)
    kw = dict(covariance_type=covariance_type, init_params="random_from_data", random_state=0,
              max_iter=6, tol=0.0, chunk_size=100)
    make = getattr(bayesdl.mixture, estimator)
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, X, budget in [("cached", blobs, _base.FEATURE_CACHE_BYTES),
                                ("no budget", blobs, 0), ("file", str(path), 2**40)]:
            monkeypatch.setattr(_base, "FEATURE_CACHE_BYTES", budget)
            calls.clear()
            fits[name] = make(n_components=3, **kw).fit(X)
            fits[name].feature_calls = len(calls)
    n_chunks = len(blobs) // 100
    # Once per chunk and run (+ the K initial rows); then 6 E-steps (+ the VB's final ELBO
    # pass) of recomputed features.
    passes = 6 + (estimator == "BayesianGaussianMixture")
    assert fits["cached"].feature_calls == n_chunks + 1 + (passes - 6) * n_chunks
    assert fits["no budget"].feature_calls == fits["file"].feature_calls == passes * n_chunks + 1
    for other in ("no budget", "file"):
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                     "lower_bounds_"):
            np.testing.assert_array_equal(getattr(fits[other], name),
                                          getattr(fits["cached"], name), err_msg=name)


def test_responsibilities_match_scipy():
    from scipy.special import logsumexp, softmax

    from bayesdl.mixture._suffstats import responsibilities

    a = np.random.default_rng(0).normal(scale=300.0, size=(5, 40))  # (K, N) log-densities
    a[2, :10] = -np.inf  # a component with zero weight there
    a[:, 7] = -np.inf  # a row no component can explain
    log_norm, resp = responsibilities(torch.as_tensor(a))
    finite = np.isfinite(a).any(0)
    np.testing.assert_allclose(log_norm.numpy()[finite], logsumexp(a[:, finite], axis=0),
                               rtol=1e-14)
    np.testing.assert_allclose(resp.numpy()[:, finite], softmax(a[:, finite], axis=0),
                               rtol=1e-12, atol=1e-300)
    assert log_norm[7] == -np.inf and np.all(resp.numpy()[:, 7] == 0)


def test_fit_predict_equals_fit_then_predict(blobs):
    gm = GaussianMixture(3, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = gm.fit_predict(blobs)
    np.testing.assert_array_equal(labels, gm.predict(blobs))


def test_distributions_agree_with_scores(blobs):
    gm = GaussianMixture(3, covariance_type="diag", random_state=0).fit(blobs)
    X = torch.as_tensor(blobs[:20])
    np.testing.assert_allclose(gm.to_distribution().log_prob(X).numpy(),
                               gm.score_samples(blobs[:20]), rtol=1e-10)
    np.testing.assert_allclose(gm.predict_dist(blobs[:20]).probs.numpy(),
                               gm.predict_proba(blobs[:20]), atol=1e-12)


def test_sample_reproduces_the_mixture_moments(blobs):
    gm = GaussianMixture(3, random_state=0).fit(blobs)
    X, y = gm.sample(40_000)
    assert X.shape == (40_000, 3) and np.all(np.diff(y) >= 0)
    mix = gm.to_distribution()
    # Each coordinate's sample mean is within 5 standard errors of the mixture mean.
    se = np.sqrt(mix.variance.numpy() / len(X))
    assert np.all(np.abs(X.mean(0) - mix.mean.numpy()) < 5 * se)
    np.testing.assert_allclose(np.bincount(y) / len(y), gm.weights_, atol=0.01)


def test_save_load_roundtrip(blobs, tmp_path):
    for ct in COVARIANCE_TYPES:
        gm = GaussianMixture(3, covariance_type=ct, random_state=0).fit(blobs)
        gm.save(tmp_path / "gm.safetensors")
        back = bayesdl.load(tmp_path / "gm.safetensors")
        np.testing.assert_array_equal(back.score_samples(blobs), gm.score_samples(blobs))
        np.testing.assert_array_equal(back.predict(blobs), gm.predict(blobs))
        assert back.lower_bounds_ == gm.lower_bounds_ and back.converged_


def test_float32_agrees_with_float64(blobs):
    kw = dict(n_components=3, random_state=0, tol=1e-6, max_iter=500)
    g64 = GaussianMixture(**kw).fit(blobs)
    g32 = GaussianMixture(**kw, dtype="float32").fit(blobs.astype(np.float32))
    assert g32.means_.dtype == np.float32
    np.testing.assert_allclose(g32.means_, g64.means_, atol=1e-2)
    np.testing.assert_allclose(g32.score(blobs), g64.score(blobs), rtol=1e-5)


def test_collapsing_component_is_reseeded_with_a_warning(blobs):
    # The third component starts far from the data, so it explains no point at all.
    init = dict(weights_init=[0.4, 0.4, 0.2], means_init=[[10, -20, 5], [14, -16, 5],
                                                          [1e3, 1e3, 1e3]])
    gm = GaussianMixture(3, random_state=0, max_iter=200, **init)
    with pytest.warns(UserWarning, match="collapsed onto fewer than 2 points"):
        gm.fit(blobs)
    assert np.all(np.isfinite(gm.means_)) and np.all(np.isfinite(gm.covariances_))
    assert gm.weights_.min() > 0.2  # all three components are in use again
    assert np.abs(gm.means_).max() < 100


def test_clear_errors(blobs):
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).fit(blobs[:4])
    bad = blobs.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2).fit(bad)
    const = blobs.copy()
    const[:, 1] = 2.0
    with pytest.raises(ValueError, match=r"Feature\(s\) \[1\] are constant.*reg_covar > 0"):
        GaussianMixture(2, reg_covar=0.0).fit(const)
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(2, covariance_type="banana").fit(blobs)
    with pytest.raises(ValueError, match="increase reg_covar"):
        precision_cholesky(torch.zeros(2, 3, 3, dtype=torch.float64), "full", 0.0)
    with pytest.raises(ValueError, match="means_init must have shape"):
        GaussianMixture(2, means_init=np.zeros((3, 3))).fit(blobs)


def test_nan_in_memory_mapped_file_is_reported(blobs, tmp_path):
    bad = blobs.copy()
    bad[-1, 0] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match="NaN or infinity"):
        GaussianMixture(2).fit(str(tmp_path / "bad.npy"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fit_equals_cpu_fit(blobs):
    cpu = _fit(blobs)
    gpu = _fit(blobs, device="cuda")
    np.testing.assert_allclose(gpu.means_, cpu.means_, atol=1e-8)
    np.testing.assert_allclose(gpu.score_samples(blobs), cpu.score_samples(blobs), rtol=1e-8)


def test_engine_controls(blobs, capsys):
    with pytest.warns(ConvergenceWarning, match="did not converge in max_iter=1"):
        GaussianMixture(3, max_iter=1, random_state=0).fit(blobs)
    # n_init keeps the best of its runs: the same runs (same draws) as scikit-learn's.
    kw = dict(n_components=3, init_params="random", max_iter=3, tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = GaussianMixture(**kw).fit(blobs)
        four = GaussianMixture(**kw, n_init=4).fit(blobs)
        ref = SkGaussianMixture(**kw, n_init=4).fit(blobs)
    assert four.lower_bound_ >= one.lower_bound_
    np.testing.assert_allclose(four.lower_bound_, ref.lower_bound_, rtol=1e-10)
    np.testing.assert_allclose(four.means_, ref.means_, rtol=1e-10)
    GaussianMixture(3, verbose=1, random_state=0).fit(blobs)
    assert "lower_bound=" in capsys.readouterr().err  # the tqdm bar shows the bound


@pytest.mark.parametrize("estimator", ["GaussianMixture", "BayesianGaussianMixture"])
@pytest.mark.parametrize("init_params", ["random_from_data", "k-means++"])
def test_tied_covariance_from_one_hot_initialisations_is_sklearns(blobs, estimator, init_params):
    # scikit-learn's tied covariance sums x x^T over all rows although only K rows carry
    # responsibility; the same seed must give the same initial parameters and the same fit.
    import sklearn.mixture

    ours_cls, ref_cls = getattr(bayesdl.mixture, estimator), getattr(sklearn.mixture, estimator)
    for max_iter in (0, 5):
        kw = dict(n_components=3, covariance_type="tied", init_params=init_params,
                  random_state=4, max_iter=max_iter, tol=0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours, ref = ours_cls(**kw).fit(blobs), ref_cls(**kw).fit(blobs)
        np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-10)
        np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-10)
        np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-10)


@pytest.mark.parametrize("estimator", ["GaussianMixture", "BayesianGaussianMixture"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_reg_covar_enters_every_m_step_as_in_sklearn(blobs, estimator, covariance_type):
    # reg_covar = 1e-3 moves the covariances by ~1e-3 relative: a check at 1e-10 fails if
    # any M-step drops (or double-counts) it.
    import sklearn.mixture

    ours_cls, ref_cls = getattr(bayesdl.mixture, estimator), getattr(sklearn.mixture, estimator)
    kw = dict(n_components=3, covariance_type=covariance_type, init_params="random",
              reg_covar=1e-3, random_state=2, max_iter=8, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, ref = ours_cls(**kw).fit(blobs), ref_cls(**kw).fit(blobs)
        plain = ref_cls(**{**kw, "reg_covar": 0.0}).fit(blobs)
    assert np.max(np.abs(plain.covariances_ / ref.covariances_ - 1)) > 1e-5  # it matters
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ours.precisions_cholesky_, ref.precisions_cholesky_, rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(ours.lower_bounds_, np.ravel(ref.lower_bounds_), rtol=1e-10)
