"""Hidden Markov models against hmmlearn (an oracle), a naive probability-space forward
recursion, scipy's Gaussian densities, and the engine's chunked / .npy paths."""

import functools
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, poisson

from bayesdl.hmm import CategoricalHMM, GaussianHMM, PoissonHMM, UnvisitedStateWarning
from bayesdl.io import load

hmm = pytest.importorskip("hmmlearn.hmm")


def _gaussian_data(seed=0):
    rng = np.random.RandomState(seed)
    X = np.concatenate([rng.randn(50, 2), rng.randn(60, 2) * 0.5 + 3, rng.randn(40, 2) - 2])
    return X, [30, 70, 50]


def _covars_for(ref, cov_type):
    """hmmlearn's covars_ getter returns full matrices (and mis-shapes spherical ones, whose
    fitted ``_covars_`` it keeps tiled (K, d)); ours keep the documented per-type shape."""
    return {"full": ref.covars_, "tied": ref.covars_[0],
            "diag": np.diagonal(ref.covars_, axis1=1, axis2=2),
            "spherical": ref._covars_[:, 0] if ref._covars_.ndim == 2 else ref._covars_}[cov_type]


@functools.lru_cache
def _hmmlearn_fit(cov_type):
    X, lengths = _gaussian_data()
    return hmm.GaussianHMM(3, covariance_type=cov_type, random_state=0, n_iter=2).fit(X, lengths)


def _gaussian_pair(cov_type, n_iter=0):
    """A fitted hmmlearn model (shared: never refit it) and ours holding the very same
    parameters."""
    X, lengths = _gaussian_data()
    ref = _hmmlearn_fit(cov_type)
    ours = GaussianHMM(3, covariance_type=cov_type, init_params="", n_iter=n_iter, tol=0)
    ours.startprob_, ours.transmat_ = ref.startprob_.copy(), ref.transmat_.copy()
    ours.means_, ours.covars_ = ref.means_.copy(), _covars_for(ref, cov_type).copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_iter=0: "did not converge"
        ours.fit(X, lengths)
    return ref, ours, X, lengths


@pytest.mark.parametrize("cov_type", ["diag", "full", "tied", "spherical"])
def test_same_parameters_give_hmmlearns_score_posteriors_and_viterbi(cov_type):
    ref, ours, X, lengths = _gaussian_pair(cov_type)
    np.testing.assert_allclose(ours.score(X, lengths), ref.score(X, lengths), rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X, lengths), ref.predict_proba(X, lengths),
                               atol=1e-8)
    log_prob, path = ours.decode(X, lengths)
    ref_log_prob, ref_path = ref.decode(X, lengths)
    np.testing.assert_allclose(log_prob, ref_log_prob, rtol=1e-12)
    np.testing.assert_array_equal(path, ref_path)
    map_prob, map_path = ours.decode(X, lengths, algorithm="map")
    ref_map = ref.decode(X, lengths, algorithm="map")
    # hmmlearn returns the sum of the largest posteriors; ours is the sum of their logs
    ref_post = ref.predict_proba(X, lengths)
    np.testing.assert_allclose(map_prob, np.log(ref_post.max(1)).sum(), rtol=1e-10)
    np.testing.assert_array_equal(map_path, ref_map[1])


@pytest.mark.parametrize("cov_type", ["diag", "full", "tied", "spherical"])
def test_baum_welch_matches_hmmlearn_after_10_iterations(cov_type):
    ref, ours, X, lengths = _gaussian_pair(cov_type)
    start = ref.startprob_.copy(), ref.transmat_.copy(), ref.means_.copy()
    covars = _covars_for(ref, cov_type).copy()
    ref2 = hmm.GaussianHMM(3, covariance_type=cov_type, init_params="", n_iter=10, tol=0)
    ref2.startprob_, ref2.transmat_, ref2.means_ = (a.copy() for a in start)
    ref2.covars_ = covars.copy()
    ref2.fit(X, lengths)
    _fitted(ours.set_params(n_iter=10), X, lengths)
    np.testing.assert_allclose(ours.startprob_, ref2.startprob_, atol=1e-6)
    np.testing.assert_allclose(ours.transmat_, ref2.transmat_, atol=1e-6)
    np.testing.assert_allclose(ours.means_, ref2.means_, atol=1e-6)
    np.testing.assert_allclose(ours.covars_, _covars_for(ref2, cov_type), atol=1e-6)
    # hmmlearn's monitor records the log-likelihood of each E-step, as our lower_bounds_
    np.testing.assert_allclose(ours.lower_bounds_, list(ref2.monitor_.history), rtol=1e-10)


def _categorical_data(seed=0):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 4, size=(120, 1)), [40, 50, 30]


def test_categorical_parity_with_hmmlearn():
    X, lengths = _categorical_data()
    rng = np.random.RandomState(1)
    start = rng.dirichlet(np.ones(3))
    trans = rng.dirichlet(np.ones(3), size=3)
    emis = rng.dirichlet(np.ones(4), size=3)
    ref = hmm.CategoricalHMM(3, init_params="", n_iter=10, tol=0)
    ours = CategoricalHMM(3, init_params="", n_iter=0, tol=0)
    for m in (ref, ours):
        m.startprob_, m.transmat_, m.emissionprob_ = start.copy(), trans.copy(), emis.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, lengths)
    ref.n_features = 4
    np.testing.assert_allclose(ours.score(X, lengths), ref.score(X, lengths), rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X, lengths), ref.predict_proba(X, lengths),
                               atol=1e-8)
    np.testing.assert_allclose(ours.decode(X, lengths)[0], ref.decode(X, lengths)[0],
                               rtol=1e-12)
    np.testing.assert_array_equal(ours.predict(X, lengths), ref.predict(X, lengths))
    ref.fit(X, lengths)
    _fitted(ours.set_params(n_iter=10), X, lengths)
    for name in ("startprob_", "transmat_", "emissionprob_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), atol=1e-6)


def _naive_forward_log_likelihood(log_b, startprob, transmat):
    """PRML 13.36-13.37 in probability space, no scaling (short sequences only)."""
    alpha = startprob * np.exp(log_b[0])
    for t in range(1, len(log_b)):
        alpha = (alpha @ transmat) * np.exp(log_b[t])
    return np.log(alpha.sum())


def _log_b_full(model, X):
    """(T, K) log N(x_t | mu_k, Sigma_k) by scipy, NaN entries left out (marginal)."""
    out = np.zeros((len(X), model.n_components))
    covars = model._full_covars()
    for t, x in enumerate(X):
        o = ~np.isnan(x)
        for k in range(model.n_components):
            if o.any():
                out[t, k] = multivariate_normal(model.means_[k, o],
                                                covars[k][np.ix_(o, o)]).logpdf(x[o])
    return out


@pytest.mark.parametrize("cov_type", ["diag", "full"])
def test_log_space_forward_equals_naive_probability_forward(cov_type):
    _, ours, X, lengths = _gaussian_pair(cov_type)
    starts = np.cumsum([0] + lengths[:-1])
    for s, n in zip(starts, lengths):
        x = X[s : s + 12]  # short: the unscaled recursion must not underflow
        expected = _naive_forward_log_likelihood(_log_b_full(ours, x), ours.startprob_,
                                                 ours.transmat_)
        np.testing.assert_allclose(ours.score(x), expected, rtol=1e-12)


def test_nan_timesteps_and_features_are_marginalised():
    _, ours, X, _ = _gaussian_pair("full")
    x = X[:15].copy()
    x[[2, 7, 8]] = np.nan  # whole timesteps: their emission drops out of the product
    x[[4, 11], 1] = np.nan  # single features: integrated out
    expected = _naive_forward_log_likelihood(_log_b_full(ours, x), ours.startprob_,
                                             ours.transmat_)
    np.testing.assert_allclose(ours.score(x), expected, rtol=1e-12)
    assert np.isfinite(ours.predict_proba(x)).all()
    # a timestep with every entry NaN contributes exactly nothing
    x_drop = np.delete(X[:15], [2], axis=0)
    y = X[:15].copy()
    y[2] = np.nan
    log_b = _log_b_full(ours, y)  # row 2 is zeros
    assert not log_b[2].any()
    assert ours.score(y) != pytest.approx(ours.score(x_drop))  # the transition still counts


@pytest.mark.parametrize("cov_type", ["diag", "full"])
def test_em_with_missing_entries_never_decreases_the_likelihood(cov_type):
    X, lengths = _gaussian_data(3)
    rng = np.random.RandomState(0)
    X[rng.rand(*X.shape) < 0.15] = np.nan
    X[[5, 60]] = np.nan
    model = GaussianHMM(3, covariance_type=cov_type, n_iter=15, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, lengths)
    bounds = np.asarray(model.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:]))
    assert np.isfinite(model.means_).all() and np.isfinite(model.covars_).all()


@pytest.mark.parametrize("model", [GaussianHMM(3, covariance_type="full", n_iter=30, tol=0,
                                               random_state=1),
                                   CategoricalHMM(3, n_iter=30, tol=0, random_state=1),
                                   PoissonHMM(2, n_iter=30, tol=0, random_state=1)])
def test_log_likelihood_never_decreases(model):
    X, lengths = _gaussian_data(1)
    if isinstance(model, CategoricalHMM):
        X, lengths = _categorical_data(1)
    if isinstance(model, PoissonHMM):
        X = np.random.RandomState(0).poisson([[2.0, 5.0]], size=(150, 2)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, lengths)
    assert np.all(np.diff(model.lower_bounds_) >= -1e-9 * np.abs(model.lower_bounds_[-1]))


def test_poisson_emissions_and_rates():
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.poisson(2.0, (200, 1)), rng.poisson(12.0, (200, 1))]).astype(float)
    model = PoissonHMM(2, n_iter=50, random_state=0).fit(X)
    np.testing.assert_allclose(np.sort(model.lambdas_[:, 0]), [2.0, 12.0], rtol=0.15)
    log_b = poisson(model.lambdas_[:, 0]).logpmf(X[:10])  # (10, K)
    expected = _naive_forward_log_likelihood(log_b, model.startprob_, model.transmat_)
    np.testing.assert_allclose(model.score(X[:10]), expected, rtol=1e-12)


def _fitted(model, X, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, lengths)


@pytest.mark.parametrize("cov_type", ["diag", "full"])
def test_chunked_and_npy_fits_equal_the_in_memory_fit(cov_type, tmp_path):
    X, lengths = _gaussian_data()
    kw = dict(n_components=3, covariance_type=cov_type, n_iter=6, tol=0, random_state=0)
    whole = _fitted(GaussianHMM(**kw), X, lengths)
    chunked = _fitted(GaussianHMM(chunk_size=40, **kw), X, lengths)
    path = tmp_path / "x.npy"
    np.save(path, X)
    from_file = _fitted(GaussianHMM(chunk_size=60, **kw), str(path), lengths)
    for other in (chunked, from_file):
        for name in ("startprob_", "transmat_", "means_", "covars_"):
            np.testing.assert_allclose(getattr(other, name), getattr(whole, name), rtol=0,
                                       atol=1e-10, err_msg=name)
        np.testing.assert_allclose(other.lower_bounds_, whole.lower_bounds_, rtol=1e-13)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_unvisited_state_warns_and_leaves_no_nan():
    X, lengths = _gaussian_data()
    model = GaussianHMM(3, covariance_type="full", init_params="st", n_iter=5, tol=0)
    model.n_features_in_ = 2
    model.means_ = np.array([[0.0, 0.0], [3.0, 3.0], [1e3, 1e3]])  # state 2 is never visited
    model.covars_ = np.tile(np.eye(2), (3, 1, 1))
    with pytest.warns(UnvisitedStateWarning, match=r"state\(s\) \[2\]"):
        model.fit(X, lengths)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        assert np.isfinite(getattr(model, name)).all(), name
    np.testing.assert_allclose(model.transmat_.sum(1), 1.0)
    assert np.isfinite(model.score(X, lengths))


def test_sample_save_load_and_errors(tmp_path):
    _, ours, X, lengths = _gaussian_pair("full")
    Xs, Z = ours.sample(500, random_state=0)
    assert Xs.shape == (500, 2) and Z.shape == (500,)
    # the empirical state frequencies follow the chain
    path = ours.save(tmp_path / "hmm.safetensors")
    again = load(path)
    np.testing.assert_allclose(again.score(X, lengths), ours.score(X, lengths), rtol=1e-14)
    with pytest.raises(ValueError, match="lengths must be positive integers summing"):
        ours.score(X, [10, 10])
    with pytest.raises(ValueError, match="unknown letters"):
        GaussianHMM(2, params="stq").fit(X)
    with pytest.raises(ValueError, match="symbols"):
        CategoricalHMM(2).fit(np.array([[0.5], [1.0]]))


def test_recovers_a_known_chain_from_many_sequences():
    truth = GaussianHMM(2, covariance_type="diag", init_params="")
    truth.n_features_in_ = 1
    truth.startprob_ = np.array([0.6, 0.4])
    truth.transmat_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    truth.means_ = np.array([[-2.0], [2.0]])
    truth.covars_ = np.array([[0.5], [0.5]])
    truth._prepare = truth._prepare  # the model is usable once its attributes are set
    truth.converged_ = True
    seqs = [truth.sample(100, random_state=i)[0] for i in range(40)]
    model = GaussianHMM(2, n_iter=100, random_state=0).fit(np.concatenate(seqs), [100] * 40)
    order = np.argsort(model.means_[:, 0])
    np.testing.assert_allclose(model.transmat_[np.ix_(order, order)], truth.transmat_, atol=0.03)
    np.testing.assert_allclose(model.means_[order], truth.means_, atol=0.05)


@pytest.mark.parametrize("cov_type", ["diag", "full"])
def test_gmmhmm_matches_hmmlearn_scores_and_never_decreases(cov_type):
    from bayesdl.hmm import GMMHMM

    X, lengths = _gaussian_data(2)
    rng = np.random.RandomState(0)
    K, M, d = 2, 2, 2
    params = dict(startprob_=np.array([0.6, 0.4]), transmat_=np.array([[0.8, 0.2], [0.3, 0.7]]),
                  weights_=rng.dirichlet(np.ones(M), size=K), means_=rng.randn(K, M, d) * 2)
    covars = rng.uniform(0.5, 2.0, (K, M, d))
    params["covars_"] = covars if cov_type == "diag" else np.stack(
        [[np.diag(c) + 0.1 for c in row] for row in covars])
    ref = hmm.GMMHMM(K, M, covariance_type=cov_type, init_params="")
    ours = GMMHMM(K, M, covariance_type=cov_type, init_params="", n_iter=0)
    for m in (ref, ours):
        for name, value in params.items():
            setattr(m, name, value.copy())
    ref.n_features = d
    _fitted(ours, X, lengths)
    np.testing.assert_allclose(ours.score(X, lengths), ref.score(X, lengths), rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X, lengths), ref.predict_proba(X, lengths),
                               atol=1e-8)
    np.testing.assert_array_equal(ours.predict(X, lengths), ref.predict(X, lengths))
    _fitted(ours.set_params(n_iter=20, tol=0), X, lengths)
    assert np.all(np.diff(ours.lower_bounds_) >= -1e-9 * abs(ours.lower_bounds_[-1]))
    assert np.isfinite(ours.covars_).all() and np.isfinite(ours.weights_).all()
    assert ours.sample(50, random_state=0)[0].shape == (50, d)


def test_categorical_npy_fit_equals_in_memory_and_needs_n_features(tmp_path):
    X, lengths = _categorical_data(2)
    np.save(tmp_path / "c.npy", X.astype(float))
    kw = dict(n_components=2, n_features=4, n_iter=5, tol=0, random_state=0)
    a = _fitted(CategoricalHMM(**kw), X, lengths)
    b = _fitted(CategoricalHMM(chunk_size=50, **kw), str(tmp_path / "c.npy"), lengths)
    np.testing.assert_allclose(b.emissionprob_, a.emissionprob_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(b.transmat_, a.transmat_, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="needs n_features"):
        CategoricalHMM(2).fit(str(tmp_path / "c.npy"), lengths)


def test_poisson_same_parameters_give_hmmlearns_score_and_posteriors():
    X = np.random.RandomState(3).poisson([[2.0, 6.0]], size=(90, 2)).astype(float)
    params = dict(startprob_=np.array([0.3, 0.7]), transmat_=np.array([[0.9, 0.1], [0.25, 0.75]]),
                  lambdas_=np.array([[1.5, 5.0], [3.0, 7.0]]))
    ref = hmm.PoissonHMM(2, init_params="")
    ours = PoissonHMM(2, init_params="", n_iter=0)
    for m in (ref, ours):
        for name, value in params.items():
            setattr(m, name, value.copy())
    _fitted(ours, X, [40, 50])
    np.testing.assert_allclose(ours.score(X, [40, 50]), ref.score(X, [40, 50]), rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X, [40, 50]), ref.predict_proba(X, [40, 50]),
                               atol=1e-8)
    np.testing.assert_array_equal(ours.predict(X, [40, 50]), ref.predict(X, [40, 50]))
