"""The README's claims hold: its Python example computes the right numbers, every estimator
with ``predict`` has ``predict_dist``, and CI runs the README's test command."""

import contextlib
import io
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import beta as beta_dist
from scipy.stats import multivariate_normal
from sklearn.base import is_classifier, is_regressor

import bayesdl
from tests._estimators import example_inputs, registered_estimators, small_instance

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The README's Python example, run as written: its variables and what it printed."""
    (code,) = re.findall(r"```python\n(.*?)```", README, re.S)
    folder = tmp_path_factory.mktemp("readme")
    ns, out, cwd = {}, io.StringIO(), os.getcwd()
    os.chdir(folder)  # (contextlib.chdir needs Python 3.11)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), ns)
    finally:
        os.chdir(cwd)
    return ns, out.getvalue(), folder


def test_readme_blr_is_the_evidence_maximising_posterior(example):
    """The example's BLR numbers against PRML 3.53-3.54, 3.58 and 3.86 computed in numpy."""
    ns, printed, _ = example
    X, t, blr = ns["data"].data, ns["data"].target, ns["blr"]
    Phi = ns["model"][0].transform(X)  # (N, M)
    Phi_c, t_c = Phi - Phi.mean(0), t - t.mean()  # the flat-prior intercept: centred data
    N, M = Phi.shape
    a, b = blr.alpha_, blr.beta_
    A = a * np.eye(M) + b * Phi_c.T @ Phi_c  # S_N^-1 (PRML 3.54)
    m = b * np.linalg.solve(A, Phi_c.T @ t_c)  # m_N (PRML 3.53)
    np.testing.assert_allclose(blr.coef_, m, rtol=1e-8, atol=1e-10 * np.abs(m).max())
    rss = np.sum((t_c - Phi_c @ m) ** 2)
    log_ev = (0.5 * M * math.log(a) + 0.5 * N * math.log(b) - 0.5 * b * rss - 0.5 * a * m @ m
              - 0.5 * np.linalg.slogdet(A)[1] - 0.5 * N * math.log(2 * math.pi))  # PRML 3.86
    assert blr.log_evidence_ == pytest.approx(log_ev, rel=1e-10)
    # predictive sd: noise + weight uncertainty + the intercept's 1/(beta N)  (PRML 3.59)
    var = 1 / b + np.einsum("nm,nm->n", Phi_c, np.linalg.solve(A, Phi_c.T).T) + 1 / (b * N)
    np.testing.assert_allclose(ns["std"], np.sqrt(var), rtol=1e-9)
    np.testing.assert_allclose(ns["mean"], Phi_c @ m + t.mean(), rtol=1e-9, atol=1e-9)
    # alpha and beta are a fixed point of the evidence updates (PRML 3.92, 3.95), to tol
    lam = np.linalg.eigvalsh(b * Phi_c.T @ Phi_c)
    gamma = np.sum(lam / (a + lam))
    assert (gamma + 2e-6) / (m @ m + 2e-6) == pytest.approx(a, rel=blr.tol)
    assert (N - gamma + 2e-6) / (rss + 2e-6) == pytest.approx(b, rel=blr.tol)
    # the torch predictive is the same Normal, and the first printed line holds these numbers
    assert isinstance(ns["dist"], torch.distributions.Normal)
    np.testing.assert_allclose(ns["dist"].mean.numpy(), ns["mean"], rtol=1e-12)
    np.testing.assert_allclose(ns["dist"].stddev.numpy(), ns["std"], rtol=1e-12)
    first = [float(v) for v in printed.splitlines()[0].split()]
    assert first == [blr.alpha_, blr.beta_, blr.log_evidence_]


def test_readme_gmm_bic_and_responsibilities(example):
    ns, _, _ = example
    gmm, X = ns["gmm"], ns["load_faithful"]().data
    K, D = gmm.means_.shape
    # log p(x_n) = log sum_k pi_k N(x_n | mu_k, Sigma_k), with scipy's densities
    log_joint = np.stack([np.log(gmm.weights_[k]) + multivariate_normal(
        gmm.means_[k], gmm.covariances_[k]).logpdf(X) for k in range(K)], axis=1)  # (N, K)
    log_px = np.logaddexp.reduce(log_joint, axis=1)
    n_params = (K - 1) + K * D + K * D * (D + 1) // 2
    assert gmm.bic(X) == pytest.approx(-2 * log_px.sum() + n_params * math.log(len(X)), rel=1e-10)
    np.testing.assert_allclose(gmm.predict_proba(X[:3]), np.exp(log_joint[:3] - log_px[:3, None]),
                               rtol=1e-9, atol=1e-12)


def test_readme_beta_binomial_credible_interval(example):
    lower, upper = example[0]["posterior"].credible_interval(0.95)
    # Beta(1, 1) prior, 120 of 1000: Beta(121, 881)
    np.testing.assert_allclose([float(lower), float(upper)],
                               beta_dist(121, 881).ppf([0.025, 0.975]), rtol=1e-10)


def test_readme_saved_model_reloads_and_predicts_identically(example):
    ns, _, folder = example
    same, model, X = ns["same"], ns["model"], ns["data"].data
    assert (folder / "mcycle.safetensors").is_file()
    assert same is not model and type(same) is type(model)
    np.testing.assert_array_equal(same.predict(X), model.predict(X))
    mean, std = same[-1].predict(same[0].transform(X), return_std=True)
    np.testing.assert_array_equal(mean, ns["mean"])
    np.testing.assert_array_equal(std, ns["std"])
    np.testing.assert_array_equal(bayesdl.load(folder / "mcycle.safetensors")[-1].coef_,
                                  ns["blr"].coef_)


# -- "Every estimator with predict also has predict_dist" ----------------------------------
def test_readme_states_the_predict_dist_rule():
    assert "Every estimator with `predict` also has\n  `predict_dist(X)`" in README


# (latent-variable transformers such as ProbabilisticPCA have predict_dist without predict: the
# posterior over their latent coordinates)
@pytest.mark.parametrize("cls", [c for c in registered_estimators() if hasattr(c, "predict")],
                         ids=lambda c: c.__name__)
def test_every_estimator_with_predict_has_predict_dist(cls):
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(-2, 1, size=(30, 2)), rng.normal(2, 1, size=(30, 2))]
    est = small_instance(cls)
    if hasattr(cls, "decode"):  # an HMM: symbols or counts where its emissions need them
        X = example_inputs(cls, X)
        dist = est.fit(X).predict_dist(X)
        # the smoothed marginals p(z_t | X): their mode is decode("map"); predict is Viterbi's
        np.testing.assert_array_equal(dist.probs.argmax(-1).numpy(),
                                      est.decode(X, algorithm="map")[1])
        return
    if is_classifier(est):
        est.fit(X, np.r_[np.zeros(30), np.ones(30)])
    elif is_regressor(est):
        est.fit(X, X.sum(1) + rng.normal(size=60))
    else:
        est.fit(X)
    dist = est.predict_dist(X)
    assert isinstance(dist, torch.distributions.Distribution)
    # one distribution per row, or one joint distribution over the rows (a GP's MultivariateNormal)
    assert dist.batch_shape == (60,) or (dist.batch_shape, dist.event_shape) == ((), (60,))
    if is_regressor(est):
        np.testing.assert_allclose(dist.mean.numpy(), est.predict(X), rtol=1e-12)
    else:  # a Categorical over classes, components or clusters: its mode is predict's answer
        labels = getattr(est, "classes_", np.arange(dist.probs.shape[-1]))
        np.testing.assert_array_equal(labels[dist.probs.argmax(-1).numpy()], est.predict(X))


def test_ci_runs_the_readme_test_command_verbatim():
    blocks = re.findall(r"```\n(.*?)\n```", README, re.S)
    test_command = next(b for b in blocks if "pytest" in b)
    assert test_command in (ROOT / ".ci" / "run").read_text()
