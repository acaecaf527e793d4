"""Report section: Bayesian linear regression (PRML 3.3-3.5) on synthetic and real data."""

from __future__ import annotations

import numpy as np
from scipy.stats import norm
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from ...datasets import load_mcycle, make_sinusoidal
from ...linear_model import (BayesianLinearRegression, BayesianLogisticRegression, GaussianBasis,
                             select_degree)
from ...viz import linear_model as viz
from ..section import Section

TITLE = "Bayesian linear regression"


def _sequential_learning(seed):
    """PRML 3.3.1: y = w0 + w1 x with w = (-0.3, 0.5), noise std 0.2, alpha = 2, beta = 25."""
    rng = np.random.default_rng(seed)
    true_w, alpha, beta = np.array([-0.3, 0.5]), 2.0, 25.0
    x = rng.uniform(-1, 1, 20)
    t = true_w[0] + true_w[1] * x + rng.normal(0, 0.2, 20)
    features = np.c_[np.ones_like(x), x]  # phi(x) = (1, x)
    model = BayesianLinearRegression(alpha=alpha, beta=beta, fit_intercept=False, random_state=seed)
    prior_samples = rng.multivariate_normal(np.zeros(2), np.eye(2) / alpha, 6)
    snapshots = [dict(n=0, mean=np.zeros(2), cov=np.eye(2) / alpha, x=[], t=[], samples=prior_samples)]
    for n in range(1, 21):
        model.partial_fit(features[n - 1:n], t[n - 1:n])  # the posterior becomes the next prior
        if n in (1, 2, 20):
            snapshots.append(dict(n=n, mean=model.coef_, cov=model.sigma_, x=x[:n], t=t[:n],
                                  samples=model.sample_posterior(6)[0]))
    return viz.sequential_learning_figure(snapshots, true_w), model.coef_


def _predictive_distribution(seed):
    """PRML Figure 3.8: 9 Gaussian basis functions, alpha = 2, beta = 25, N = 1, 2, 4, 25."""
    x, t = make_sinusoidal(25, 0.2, random_state=seed)
    grid = np.linspace(0, 1, 200)
    basis = GaussianBasis(n_centers=9).fit(grid[:, None])  # centres fixed over [0, 1]
    panels = []
    for n in (1, 2, 4, 25):
        model = BayesianLinearRegression(alpha=2.0, beta=25.0, fit_intercept=False).fit(
            basis.transform(x[:n]), t[:n])
        mean, std = model.predict(basis.transform(grid[:, None]), return_std=True)
        panels.append(dict(x_train=x[:n, 0], t_train=t[:n], x_grid=grid, mean=mean, std=std,
                           truth=np.sin(2 * np.pi * grid), title=f"N = {n}"))
    return viz.predictive_panels_figure(panels)


def _evidence_vs_degree(seed):
    """PRML Figure 3.14: the evidence favours M = 3 on 10 noisy points of sin(2 pi x)."""
    x, t = make_sinusoidal(10, 0.3, random_state=6 + seed, uniform_grid=True)
    result = select_degree(x, t, range(10), alpha=5e-3, beta=1 / 0.09, fit_intercept=False)
    fig = viz.evidence_figure(result.degrees, {"alpha = 5e-3, beta = 1/0.3^2 (as PRML)": result.log_evidence})
    return fig, result.best_degree


def _motorcycle(seed):
    """Real data: head acceleration after a simulated motorcycle crash, 20 Gaussian bases."""
    data = load_mcycle()
    X, t = data.data, data.target
    X_tr, X_te, t_tr, t_te = train_test_split(X, t, test_size=0.3, random_state=seed)

    def make():
        return make_pipeline(GaussianBasis(n_centers=20), BayesianLinearRegression())

    held_out = make().fit(X_tr, t_tr)
    mean, std = held_out[-1].predict(held_out[0].transform(X_te), return_std=True)
    z = norm.ppf(0.975)
    coverage = float(np.mean(np.abs(t_te - mean) <= z * std))
    full = make().fit(X, t)
    grid = np.linspace(X.min(), X.max(), 300)
    g_mean, g_std = full[-1].predict(full[0].transform(grid[:, None]), return_std=True)
    fig = viz.regression_figure(X[:, 0], t, grid, g_mean, g_std, xlabel="time after impact (ms)",
                                ylabel="head acceleration (g)",
                                title="motorcycle crash: BLR with 20 Gaussian bases")
    blr = full[-1]
    numbers = {
        "mcycle: alpha (prior precision)": blr.alpha_,
        "mcycle: noise std 1/sqrt(beta)": blr.beta_ ** -0.5,
        "mcycle: effective parameters gamma (of 20)": blr.gamma_,
        "mcycle: log evidence": blr.log_evidence_,
        "mcycle: held-out RMSE (30% split)": float(np.sqrt(np.mean((t_te - mean) ** 2))),
        "mcycle: held-out 95% interval coverage": coverage,
    }
    return fig, numbers


def logistic_moderation(seed: int = 0) -> dict:
    """Bayesian logistic regression on two Gaussian classes (PRML Fig. 4.14 style): the MAP
    probabilities against the probit-moderated ones, which fall back towards 1/2 away from
    the data where the posterior over w is wide."""
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal([-1.0, -0.5], 0.8, (30, 2)), rng.normal([1.0, 0.8], 0.8, (30, 2))]
    y = np.r_[np.zeros(30, int), np.ones(30, int)]
    model = BayesianLogisticRegression().fit(X, y)  # alpha by the Laplace evidence
    xx, yy = np.meshgrid(np.linspace(-6, 6, 121), np.linspace(-6, 6, 121))
    grid = np.c_[xx.ravel(), yy.ravel()]
    p_map = BayesianLogisticRegression(alpha=model.alpha_, predictive="map").fit(X, y).predict_proba(grid)[:, 1]
    p_mod = model.predict_proba(grid)[:, 1]
    far = np.array([[4.0, -5.0]])  # near the decision boundary, far from the data
    return {"model": model, "p_map": p_map.reshape(xx.shape), "p_moderated": p_mod.reshape(xx.shape),
            "figure": viz.logistic_contours_figure(X, y, xx, yy, p_map.reshape(xx.shape),
                                                   p_mod.reshape(xx.shape)),
            "far": (BayesianLogisticRegression(alpha=model.alpha_, predictive="map").fit(X, y)
                    .predict_proba(far)[:, 1], model.predict_proba(far)[:, 1])}


def build(quick: bool = False, seed: int = 0) -> Section:
    seq_fig, w_20 = _sequential_learning(seed)
    ev_fig, best_degree = _evidence_vs_degree(seed)
    moto_fig, moto = _motorcycle(seed)
    logistic = logistic_moderation(seed)
    far_map, far_mod = logistic["far"]
    table = {
        "sequential learning: posterior mean w after 20 points (true -0.3, 0.5)":
            f"({w_20[0]:.3f}, {w_20[1]:.3f})",
        "evidence-optimal polynomial degree, 10 points of sin(2 pi x)": best_degree,
        **moto,
        "logistic: alpha by the Laplace evidence": logistic["model"].alpha_,
        "logistic: p(class 1) at (4, -5), MAP vs moderated": f"{far_map[0]:.3f} vs {far_mod[0]:.3f}",
    }
    return Section(
        title=TITLE,
        summary=(
            "Gaussian prior w ~ N(0, 1/alpha I), Gaussian noise of precision beta; the posterior "
            "N(m_N, S_N) and the predictive N(m_N^T phi(x), 1/beta + phi^T S_N phi) in closed form, "
            "with alpha and beta set by maximising the evidence. On the motorcycle data the "
            "homoscedastic noise model is honest on average but too wide before the impact and "
            "too narrow during it: a heteroscedastic model (Bayesian deep learning section) fixes that. "
            "Bayesian logistic regression has no closed-form posterior: the Laplace approximation "
            "puts a Gaussian at the MAP, and the probit-moderated predictive becomes less "
            "confident than the MAP away from the data."
        ),
        figures=[
            ("Sequential Bayesian learning of a line (PRML Fig. 3.7)", seq_fig),
            ("Predictive distribution with 9 Gaussian basis functions, N = 1, 2, 4, 25 (PRML Fig. 3.8)",
             _predictive_distribution(seed)),
            ("Model evidence against polynomial degree (PRML Fig. 3.14)", ev_fig),
            ("Motorcycle crash data with evidence-optimised BLR", moto_fig),
            ("Bayesian logistic regression: MAP against probit-moderated predictive (PRML Fig. 4.14 style)",
             logistic["figure"]),
        ],
        table=table,
    )
