"""BayesianLogisticRegression against statsmodels, scikit-learn, autograd and Monte Carlo."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from bayesdl import load, save
from bayesdl.core.em import Batches
from bayesdl.linear_model import BayesianLogisticRegression


def _standardised(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_flat_prior_map_and_covariance_equal_statsmodels_logit_on_spector():
    sm = pytest.importorskip("statsmodels.api")
    d = sm.datasets.spector.load_pandas()
    X, y = d.exog.to_numpy(), d.endog.to_numpy()
    model = BayesianLogisticRegression(alpha=0.0).fit(X, y)
    ref = sm.Logit(y, sm.add_constant(X, prepend=False)).fit(disp=0, tol=1e-12)
    ours = np.r_[model.coef_[0], model.intercept_]
    np.testing.assert_allclose(ours, [2.826113, 0.095158, 2.378688, -13.021347], atol=5e-7)
    np.testing.assert_allclose(ours, np.asarray(ref.params), rtol=1e-9)
    np.testing.assert_allclose(model.covariance_, np.asarray(ref.cov_params()), rtol=1e-8)


@pytest.mark.parametrize("loader", [load_breast_cancer, load_iris], ids=["binary", "multinomial"])
@pytest.mark.parametrize("solver", ["newton", "lbfgs"])
def test_fixed_alpha_map_equals_sklearn_logistic_regression(loader, solver):
    X, y = _standardised(loader)
    alpha = 2.0
    ours = BayesianLogisticRegression(alpha=alpha, solver=solver).fit(X, y)
    ref = LogisticRegression(C=1 / alpha, tol=1e-12, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6)
    # the softmax's intercepts are defined up to a shift: compare the centred ones
    ref_b = ref.intercept_ - (ref.intercept_.mean() if len(ref.intercept_) > 1 else 0)
    np.testing.assert_allclose(ours.intercept_, ref_b, atol=1e-6)
    map_proba = BayesianLogisticRegression(alpha=alpha, predictive="map", solver=solver).fit(X, y)
    np.testing.assert_allclose(map_proba.predict_proba(X), ref.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_laplace_covariance_is_inverse_autograd_hessian_of_negative_log_posterior(n_classes):
    X, y = make_classification(120, 4, n_informative=3, n_redundant=0, n_classes=n_classes,
                               n_clusters_per_class=1, random_state=0)
    alpha = np.array([0.5, 1.0, 2.0, 3.0])  # ARD precisions
    model = BayesianLogisticRegression(alpha=alpha, intercept_precision=0.1).fit(X, y)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    K = 1 if n_classes == 2 else n_classes
    Phi = torch.cat([Xt, torch.ones(len(X), 1, dtype=Xt.dtype)], 1)
    prec = torch.as_tensor(np.r_[alpha, 0.1]).repeat(K)

    def neg_log_posterior(theta):
        a = Phi @ theta.view(K, -1).T
        if K == 1:
            nll = torch.nn.functional.binary_cross_entropy_with_logits(a[:, 0], yt.double(), reduction="sum")
        else:
            nll = torch.nn.functional.cross_entropy(a, yt, reduction="sum")
        return nll + 0.5 * (prec * theta**2).sum()

    theta = torch.as_tensor(np.c_[model.coef_, model.intercept_].reshape(-1)).requires_grad_()
    grad = torch.autograd.grad(neg_log_posterior(theta), theta)[0]
    assert grad.abs().max() < 1e-8  # the MAP
    H = torch.autograd.functional.hessian(neg_log_posterior, theta.detach())
    np.testing.assert_allclose(model.covariance_, torch.linalg.inv(H).numpy(), rtol=1e-7, atol=1e-12)


def test_probit_predictive_within_0_02_of_monte_carlo_case_by_case():
    X, y = make_classification(40, 2, n_informative=2, n_redundant=0, random_state=1)
    model = BayesianLogisticRegression(alpha=1.0, n_samples=100_000, random_state=0).fit(X, y)
    grid = np.random.default_rng(0).normal(0, 3, (50, 2))
    probit = model.predict_proba(grid)
    mc = BayesianLogisticRegression(alpha=1.0, predictive="mc", n_samples=100_000,
                                    random_state=0).fit(X, y).predict_proba(grid)
    assert np.abs(probit - mc).max() < 0.02
    # the moderated probability is less confident than the MAP one, and ordered the same
    p_map = BayesianLogisticRegression(alpha=1.0, predictive="map").fit(X, y).predict_proba(grid)[:, 1]
    assert np.all(np.abs(probit[:, 1] - 0.5) <= np.abs(p_map - 0.5) + 1e-12)


def test_softmax_probit_moderates_logit_differences_and_tracks_monte_carlo():
    from bayesdl.nn.laplace import probit_probs

    rng = np.random.default_rng(0)
    mean = torch.as_tensor(rng.normal(0, 2, (20, 3)))
    root = torch.as_tensor(rng.normal(0, 1, (20, 3, 3)))
    cov = root @ root.transpose(1, 2)  # (20, 3, 3)
    p = probit_probs(mean, cov)
    # unchanged by variance along the shift of all logits (the softmax's unidentified direction)
    ones = torch.ones(3, 3, dtype=cov.dtype)
    np.testing.assert_allclose(probit_probs(mean + 5.0, cov + 7.0 * ones), p, rtol=1e-12)
    # two logits: PRML 4.155 on their difference, and the one-logit binary form
    two = probit_probs(mean[:, :2], cov[:, :2, :2])[:, 0]
    v = cov[:, 0, 0] + cov[:, 1, 1] - 2 * cov[:, 0, 1]
    d = mean[:, 0] - mean[:, 1]
    np.testing.assert_allclose(two, torch.sigmoid(d / torch.sqrt(1 + np.pi * v / 8)), rtol=1e-12)
    np.testing.assert_allclose(probit_probs(d[:, None], v[:, None, None])[:, 1], two, rtol=1e-12)
    # a 3-class posterior: within 0.03 of 100,000 posterior draws case by case, and nearer
    # than moderating each logit by its own variance (the extended probit)
    X, y = _standardised(load_iris)
    model = BayesianLogisticRegression(alpha=1.0, n_samples=100_000, random_state=0).fit(X, y)
    probit = model.predict_proba(X)
    mc = model.predict_dist(X, predictive="mc").probs.numpy()
    mu, var = model.logit_moments(X)
    extended = torch.softmax(mu / torch.sqrt(1 + np.pi * var / 8), -1).numpy()
    assert np.abs(probit - mc).max() < 0.03
    assert np.abs(probit - mc).max() < 0.5 * np.abs(extended - mc).max()


def test_evidence_maximising_alpha_equals_grid_search():
    X, y = _standardised(load_breast_cancer)
    model = BayesianLogisticRegression().fit(X, y)
    grid = model.alpha_ * np.logspace(-0.2, 0.2, 41)
    evidence = [BayesianLogisticRegression(alpha=a).fit(X, y).log_evidence_ for a in grid]
    best = int(np.argmax(evidence))
    assert best not in (0, len(grid) - 1)
    assert model.log_evidence_ >= max(evidence) - 1e-6
    np.testing.assert_allclose(model.alpha_, grid[best], rtol=0.011)  # the grid's spacing


def test_ard_prunes_irrelevant_features():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = (X[:, 0] - 2 * X[:, 1] + 0.5 * rng.normal(size=400) > 0).astype(int)
    model = BayesianLogisticRegression(ard=True).fit(X, y)
    assert model.alpha_.shape == (5,)
    assert np.all(model.alpha_[2:] > 100 * model.alpha_[:2].max())


def test_ard_prunes_a_feature_at_once_instead_of_cycling():
    """On breast cancer's first 6 features ARD used to cycle for ever between two alphas of
    feature 0 (its weight ~1e-7, below the warm Newton step's tolerance, stopped following
    alpha): it now converges, the active alphas satisfy MacKay's alpha_j = gamma_j / m_j^2,
    and restoring a pruned feature (alpha_j = 100) lowers the evidence (PRML 4.137)."""
    X, y = _standardised(load_breast_cancer)
    X = X[:, :6]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = BayesianLogisticRegression(ard=True).fit(X, y)
    assert model.n_evidence_iter_ < 50
    alpha, w = model.alpha_, model.coef_[0]
    active = alpha < 1e6
    np.testing.assert_array_equal(active, [False, True, False, True, True, True])
    gamma = 1 - alpha * np.diag(model.covariance_)[:6]
    np.testing.assert_allclose(alpha[active], gamma[active] / w[active] ** 2, rtol=1e-3)
    evidence = BayesianLogisticRegression(alpha=alpha).fit(X, y).log_evidence_
    np.testing.assert_allclose(evidence, model.log_evidence_, rtol=1e-10)
    for j in np.flatnonzero(~active):
        restored = alpha.copy()
        restored[j] = 100.0
        assert BayesianLogisticRegression(alpha=restored).fit(X, y).log_evidence_ < evidence


def test_sample_weight_equals_repetition_and_streaming_equals_in_memory(tmp_path):
    X, y = _standardised(load_iris)
    w = np.random.default_rng(0).integers(0, 3, len(y))
    weighted = BayesianLogisticRegression(alpha=1.0).fit(X, y, sample_weight=w)
    repeated = BayesianLogisticRegression(alpha=1.0).fit(np.repeat(X, w, 0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(weighted.covariance_, repeated.covariance_, rtol=1e-9, atol=1e-12)
    full = BayesianLogisticRegression(alpha=1.0).fit(X, y)
    rows = np.c_[X, y]
    np.save(tmp_path / "rows.npy", rows)
    for source in (str(tmp_path / "rows.npy"), Batches([rows[:50], rows[50:120], rows[120:]])):
        streamed = BayesianLogisticRegression(alpha=1.0, chunk_size=17).fit(source)
        np.testing.assert_allclose(streamed.coef_, full.coef_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(streamed.covariance_, full.covariance_, rtol=1e-10, atol=1e-12)


def test_predict_dist_std_and_save_load(tmp_path):
    X, y = _standardised(load_iris)
    model = BayesianLogisticRegression(random_state=0).fit(X, y)
    dist = model.predict_dist(X[:5])
    assert isinstance(dist, torch.distributions.Categorical)
    proba, std = model.predict_proba(X[:5], return_std=True)
    np.testing.assert_allclose(proba, dist.probs.numpy())
    assert std.shape == proba.shape and np.all(std >= 0)
    back = load(save(model, tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))
    assert back.alpha_ == model.alpha_


def test_bad_input_errors():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    with pytest.raises(ValueError, match="separable.*MAP does not exist"):
        BayesianLogisticRegression(alpha=0.0).fit(X, [0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"only one class \(1\)"):
        BayesianLogisticRegression().fit(X, [1, 1, 1, 1])
    with pytest.raises(ValueError, match="NaN"):
        BayesianLogisticRegression().fit(np.array([[0.0], [np.nan], [1.0]]), [0, 1, 0])
    with pytest.raises(ValueError, match="alpha must be"):
        BayesianLogisticRegression(alpha=[1.0, 2.0]).fit(X, [0, 1, 0, 1])
    with pytest.raises(ValueError, match="singular: some features are collinear"):
        BayesianLogisticRegression(alpha=0.0).fit(np.c_[X, 2 * X], [0, 1, 0, 1])
    with pytest.raises(ValueError, match="ard=True .* needs alpha=None"):
        BayesianLogisticRegression(alpha=1.0, ard=True).fit(X, [0, 1, 0, 1])


def test_newton_stops_where_no_step_lowers_the_posterior_any_more():
    """On nearly separable data the MAP is flat to rounding: the line search then finds no
    decrease, which is convergence (it once looped to max_iter with a warning, at 30x the
    time), and the MAP still has a zero gradient to the data's resolution."""
    from sklearn.datasets import make_blobs
    from sklearn.preprocessing import StandardScaler

    X, y = make_blobs(n_samples=300, random_state=0)
    X, y = StandardScaler().fit_transform(X), (y == 2).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = BayesianLogisticRegression().fit(X, y)
    assert clf.n_iter_ <= 5
    # the gradient of the log posterior at the MAP (PRML 4.91 plus the prior's -alpha w)
    p = 1 / (1 + np.exp(-(X @ clf.coef_.ravel() + clf.intercept_[0])))
    grad = X.T @ (y - p) - clf.alpha_ * clf.coef_.ravel()
    assert np.abs(grad).max() < 1e-6


def test_one_class_with_positive_weight_is_refused():
    X, y = np.random.default_rng(0).normal(size=(20, 2)), np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match=r"only one class \(1\) has a positive sample_weight"):
        BayesianLogisticRegression(alpha=1.0).fit(X, y, sample_weight=(y == 1).astype(float))


def test_lbfgs_reaches_the_map_so_one_hessian_pass_gives_the_posterior():
    """solver="lbfgs" runs L-BFGS until the Newton step is below tol: the first Hessian pass
    (n_iter_ == 1) then confirms the MAP, and the covariance is the inverse Hessian there."""
    X, y = make_classification(3000, 40, n_informative=10, random_state=0)
    X = StandardScaler().fit_transform(X)
    model = BayesianLogisticRegression(alpha=1.0, solver="lbfgs").fit(X, y)
    assert model.n_iter_ == 1
    w = np.r_[model.coef_[0], model.intercept_]
    Phi = np.c_[X, np.ones(len(X))]
    p = 1 / (1 + np.exp(-Phi @ w))
    prec = np.r_[np.ones(40), 0.0]
    A = (Phi * (p * (1 - p))[:, None]).T @ Phi + np.diag(prec)  # PRML 4.97 + the prior
    newton_step = np.linalg.solve(A, Phi.T @ (y - p) - prec * w)
    assert np.abs(newton_step).max() <= 1e-8 * (1 + np.abs(w).max())
    np.testing.assert_allclose(model.covariance_, np.linalg.inv(A), rtol=1e-9, atol=1e-14)


def test_float32_softmax_converges_to_the_float64_map():
    """In float32 the Newton step stalls at the rounding of the gradient: the fit stops where
    its predicted decrease is below the rounding of f (without that stop a 40,000-row softmax
    took 173 Hessian passes of line search) and matches float64 to float32's precision."""
    X, y = make_classification(3000, 15, n_informative=8, n_classes=3, random_state=0)
    X = StandardScaler().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        f32 = BayesianLogisticRegression(alpha=1.0, dtype="float32").fit(X, y)
    f64 = BayesianLogisticRegression(alpha=1.0).fit(X, y)
    assert f32.n_iter_ <= 3
    np.testing.assert_allclose(f32.coef_, f64.coef_, atol=1e-4)
    np.testing.assert_allclose(f32.intercept_, f64.intercept_, atol=1e-4)


def _dense_posterior_precision(X, y, w, coef, intercept, alpha):
    """Phi^T R Phi + diag(alpha) (PRML 4.97) and the log posterior's gradient (PRML 4.91
    with the prior) for two classes, from the whole (N, P) design at once in numpy."""
    Phi = np.c_[X, np.ones(len(X))]
    theta = np.r_[coef, intercept]
    prec = np.r_[np.full(X.shape[1], alpha), 0.0]
    p = 1 / (1 + np.exp(-Phi @ theta))
    A = (Phi * (w * p * (1 - p))[:, None]).T @ Phi + np.diag(prec)
    return A, Phi.T @ (w * (y - p)) - prec * theta


@pytest.mark.parametrize("n_classes", [2, 3])
def test_subsample_start_reaches_the_cold_full_data_map(n_classes, monkeypatch):
    """Above 4 x 200 rows per parameter L-BFGS starts from a subsample's MAP with its Hessian:
    the MAP equals Newton's from zero on all rows (run to 1e-12) to tol = 1e-8 relative to
    |w|, one Hessian pass (at the MAP) gives the posterior, and with two classes the
    covariance is the inverse of the dense numpy Hessian at the returned MAP."""
    X, y = make_classification(40_000, 6, n_informative=4, n_redundant=0, n_classes=n_classes,
                               n_clusters_per_class=1, random_state=0)
    X = StandardScaler().fit_transform(X)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    starts = []
    original = BayesianLogisticRegression._subsample_start

    def spy(self, *args, **kwargs):
        starts.append(original(self, *args, **kwargs))
        return starts[-1]

    monkeypatch.setattr(BayesianLogisticRegression, "_subsample_start", spy)
    model = BayesianLogisticRegression(alpha=1.0, solver="lbfgs").fit(X, y, sample_weight=w)
    # the outer call (it returns last) took a start; so did its subsample's own (n / 8 rows)
    assert starts[-1] is not None and starts[-2] is not None
    assert model.n_hessian_passes_ == 1
    ref = BayesianLogisticRegression(alpha=1.0, solver="newton", tol=1e-12).fit(
        X, y, sample_weight=w)
    within = 1e-8 * (1 + np.abs(ref.coef_).max())  # the stop rule's tolerance
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=0, atol=within)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, rtol=0, atol=within)
    # the two covariances belong to points within ``within``: equal to about that, relatively
    S = np.abs(ref.covariance_).max()
    np.testing.assert_allclose(model.covariance_, ref.covariance_, rtol=0, atol=1e-6 * S)
    if n_classes == 2:
        A, grad = _dense_posterior_precision(X, y, w, model.coef_[0], model.intercept_[0], 1.0)
        newton_step = np.linalg.solve(A, grad)
        assert np.abs(newton_step).max() <= 1e-8 * (1 + np.abs(model.coef_).max())
        np.testing.assert_allclose(model.covariance_, np.linalg.inv(A), rtol=1e-9, atol=1e-14)


def test_subsample_without_a_class_still_reaches_the_map():
    """Every 8th row misses the rare class: the subsample's intercept runs off (flat prior)
    and its Newton does not converge, so the fit falls back to L-BFGS from zero and still
    ends at the MAP."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12_000, 6))
    y = np.zeros(len(X), dtype=int)
    y[np.arange(3, len(X), 1000)] = 1  # 12 positives, none on a multiple of the stride
    model = BayesianLogisticRegression(alpha=1.0, solver="lbfgs").fit(X, y)
    ref = BayesianLogisticRegression(alpha=1.0, solver="newton").fit(X, y)
    np.testing.assert_allclose(model.coef_, ref.coef_, atol=1e-7)
    np.testing.assert_allclose(model.intercept_, ref.intercept_, atol=1e-7)


def test_npy_subsample_equals_in_memory_subsample(tmp_path):
    X, y = make_classification(12_000, 6, n_informative=4, n_redundant=0, random_state=2)
    np.save(tmp_path / "rows.npy", np.c_[X, y])
    memory = BayesianLogisticRegression(alpha=1.0, solver="lbfgs").fit(X, y)
    streamed = BayesianLogisticRegression(alpha=1.0, solver="lbfgs").fit(str(tmp_path / "rows.npy"))
    # the same rows are subsampled, so the same path: equal to rounding
    np.testing.assert_allclose(streamed.coef_, memory.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(streamed.covariance_, memory.covariance_, rtol=1e-10, atol=1e-14)
    assert streamed.n_gradient_passes_ == memory.n_gradient_passes_


def _distributed_data():
    X, y = make_classification(24_000, 5, n_informative=3, n_redundant=0, random_state=3)
    return StandardScaler().fit_transform(X), y


def _distributed_worker(rank, port, out):
    from bayesdl.core import distributed
    from tests._distributed import gloo_group

    with gloo_group(rank, port):
        X, y = _distributed_data()
        rows = distributed.shard(len(X))  # this rank's rows only
        model = BayesianLogisticRegression(alpha=1.0, solver="lbfgs").fit(X[rows], y[rows])
        out[rank] = [{"coef_": model.coef_, "intercept_": model.intercept_,
                      "covariance_": model.covariance_}]


@pytest.mark.slow  # two spawned processes importing torch: ~25 s on the shared 2 cores
def test_two_process_fit_equals_single_process_fit():
    """Each rank holds half the rows; the gradient and Hessian sums (and the subsample's)
    are all-reduced, so both ranks find the one-process MAP and posterior. The ranks
    subsample their own shards, a different subsample from one process's, so the MAPs
    agree to the stop rule's tolerance (1e-8 relative to |w|), not to rounding."""
    from tests._distributed import assert_ranks_equal_single, fits_on_two_ranks

    X, y = _distributed_data()
    single = BayesianLogisticRegression(alpha=1.0, solver="lbfgs").fit(X, y)
    within = 1e-8 * (1 + np.abs(single.coef_).max())
    ref = {"coef_": single.coef_, "intercept_": single.intercept_,
           "covariance_": single.covariance_}
    results = fits_on_two_ranks(_distributed_worker)
    for rank in (0, 1):
        for name in ("coef_", "intercept_"):
            np.testing.assert_allclose(results[rank][0][name], ref[name], rtol=0, atol=within)
        np.testing.assert_allclose(results[rank][0]["covariance_"], ref["covariance_"],
                                   rtol=1e-6)
    assert_ranks_equal_single({0: results[1], 1: results[1]}, results[0], atol=0.0)
