"""The default training budget gives calibrated regression intervals on small tables.

Issue 14: with the noise starting at log sigma^2 = 0 and a budget of 200 epochs of 2 batches,
``bayesdl fit bnn`` on 200 rows (linear signal, noise sd 0.3) predicted sd 1.2-1.6 against an
RMSE of 0.34: 95% coverage 1.000, NLL 1.13 against Bayesian linear regression's 0.23. The
defaults now budget optimiser steps, start the noise at a tenth of var(y) and stop early on a
held-out NLL. References: the held-out coverage must be near 0.95, and the held-out NLL near
that of Bayesian linear regression (the right model for a linear signal) or of the true noise.
"""

import csv
import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from bayesdl import load
from bayesdl.cli import main
from bayesdl.linear_model import BayesianLinearRegression
from bayesdl.neural_network import BayesianMLPClassifier, BayesianMLPRegressor
from bayesdl.uncertainty import interval_coverage, negative_log_likelihood

METHODS = ["bbb", "mc_dropout", "ensemble"]
# (rows, noise sd, signal, seed); the first is the issue's case
CASES = [(200, 0.3, "issue", 0), (100, 0.5, "nonlinear", 1), (500, 0.1, "nonlinear", 2),
         (300, 1.0, "linear", 3)]
N_TEST = 1000


def _regression(n, noise, signal, seed):
    rng = np.random.default_rng(seed)
    if signal == "issue":
        X = rng.uniform(-3, 3, size=(n + N_TEST, 1))
        f = 1.5 * X[:, 0]
    else:
        X = rng.uniform(-2, 2, size=(n + N_TEST, 2))
        f = (X @ np.array([1.0, -0.5]) if signal == "linear"
             else np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] ** 2)
    y = f + noise * rng.standard_normal(n + N_TEST)
    return X[:n], y[:n], X[n:], y[n:]


def _check_calibrated(dist, case, X, y, X_test, y_test):
    n, noise, signal, _ = case
    coverage = interval_coverage(dist, y_test, 0.95)
    nll = negative_log_likelihood(dist, y_test)
    assert 0.85 <= coverage <= 0.99, f"95% interval coverage {coverage:.3f} on {case}"
    if signal == "nonlinear":  # the NLL of the true function with the true noise
        reference, margin = 0.5 * math.log(2 * math.pi * noise ** 2) + 0.5, 0.3
    else:  # Bayesian linear regression is the right model for a linear signal
        reference = negative_log_likelihood(
            BayesianLinearRegression().fit(X, y).predict_dist(X_test), y_test)
        margin = 0.15
    assert nll <= reference + margin, f"NLL {nll:.3f} against {reference:.3f} on {case}"


def _fit_default(method, case):
    X, y, X_test, y_test = _regression(*case)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the default budget suffices
        reg = BayesianMLPRegressor(method=method, random_state=0).fit(X, y)
    _check_calibrated(reg.predict_dist(X_test), case, X, y, X_test, y_test)
    return reg


def _write(path, X, y=None):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"x{j}" for j in range(X.shape[1])] + ([] if y is None else ["y"]))
        w.writerows(np.column_stack([X] if y is None else [X, y]).tolist())
    return path


def _fit_cli_default(tmp_path, method, case):
    X, y, X_test, y_test = _regression(*case)
    out = tmp_path / f"{method}.safetensors"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert main(["fit", "bnn", "--data", str(_write(tmp_path / "train.csv", X, y)),
                     "--target", "y", "--out", str(out), "--method", method, "--quiet"]) == 0
    _check_calibrated(load(out).predict_dist(X_test), case, X, y, X_test, y_test)


@pytest.mark.parametrize("method", METHODS)
def test_default_estimator_is_calibrated_on_the_issue_case(method):
    reg = _fit_default(method, CASES[0])
    # the budget is in steps: 180 training rows in batches of 128 get up to 2000 steps
    assert reg.n_iter_ * 2 <= 2000 and reg.best_epoch_ < reg.n_iter_


def test_default_cli_is_calibrated_on_the_issue_case(tmp_path):
    _fit_cli_default(tmp_path, "mc_dropout", CASES[0])  # the CLI's default method


# MC dropout's predictive variance includes the dropout noise of the fitted function, which
# does not shrink with the data: at noise sd 0.1 its intervals are ~2x too wide with the
# default rate (coverage 1.000); Gal & Ghahramani tune the rate on held-out data.
_LOW_NOISE_DROPOUT = pytest.mark.xfail(
    reason="MC dropout over-covers at low noise with the default dropout rate", strict=False)


def _grid(cases):
    return [pytest.param(m, c, marks=_LOW_NOISE_DROPOUT if (m, c[1]) == ("mc_dropout", 0.1)
                         else ()) for m in METHODS for c in cases]


@pytest.mark.slow
@pytest.mark.parametrize("method, case", _grid(CASES[1:]))
def test_default_estimator_is_calibrated_on_small_regressions(method, case):
    _fit_default(method, case)


@pytest.mark.slow
@pytest.mark.parametrize("method, case", _grid(CASES))
def test_default_cli_is_calibrated_on_small_regressions(tmp_path, method, case):
    _fit_cli_default(tmp_path, method, case)


def test_noise_starts_at_a_tenth_of_the_target_variance():
    X, y, _, _ = _regression(*CASES[0])
    for heteroscedastic in (False, True):
        reg = BayesianMLPRegressor((8,), heteroscedastic=heteroscedastic, max_epochs=1,
                                   random_state=0)
        with pytest.warns(ConvergenceWarning):
            reg.fit(X, y)
        fresh = reg._network(1, seed=0)  # the network as it starts training
        with torch.no_grad():
            out = fresh(torch.zeros(1, 1, dtype=torch.float64))  # (1, 2): mean, log sigma^2
        if heteroscedastic:  # the bias of the log-variance output; the weights add to it
            assert fresh.body[-1].bias_mu[1].item() == pytest.approx(math.log(0.1), abs=1e-7)  # set in float32
        else:
            assert out[0, 1].item() == pytest.approx(math.log(0.1), abs=1e-7)  # set in float32


def test_convergence_warning_when_the_budget_runs_out_first():
    X, y, _, _ = _regression(*CASES[0])
    with pytest.warns(ConvergenceWarning, match="whole budget .* Raise max_steps"):
        reg = BayesianMLPRegressor((8,), max_steps=6, random_state=0).fit(X, y)
    assert reg.n_iter_ == 3  # 6 steps of 2 batches (180 training rows, batches of 128)
    assert len(reg.validation_scores_) == 3
    clf = BayesianMLPClassifier((8,), max_steps=4, early_stopping=False, random_state=0)
    with pytest.warns(ConvergenceWarning, match="training loss was still improving"):
        clf.fit(X, (y > 0).astype(int))
    assert clf.n_iter_ == 2 and clf.validation_scores_ == []  # nothing held out


def test_early_stopping_keeps_the_weights_with_the_best_held_out_nll():
    X, y, _, _ = _regression(*CASES[1])
    reg = BayesianMLPRegressor((16,), method="ensemble", n_estimators=2, patience=40,
                               random_state=0).fit(X, y)
    scores = np.array(reg.validation_scores_)
    assert reg.best_epoch_ == int(np.argmin(scores)) and reg.best_epoch_ < len(scores) - 1
    # the ensemble is deterministic: the kept network's held-out NLL is the best score
    held_out = np.sort(np.random.default_rng(_seed(reg)).permutation(len(X))[:10])
    val = reg._heldout_nll(reg.network_, [(reg._standardise(X[held_out]),
                                           reg._to_torch((y[held_out] - reg.y_mean_)
                                                         / reg.y_scale_))])
    assert val == pytest.approx(scores.min(), rel=1e-10)


def _seed(est):
    return int(np.random.RandomState(est.random_state).randint(np.iinfo(np.int32).max))
