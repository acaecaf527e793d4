"""Laplace approximation: Bayesian logistic regression vs scikit-learn, and last-layer Laplace
on the digits MLP vs laplace-torch (when installed).

1. Fit time at n = 200,000, d = 100 (binary, standardised Gaussian features, alpha = 1):
   ``BayesianLogisticRegression(alpha=1)`` (MAP + posterior covariance) against
   ``LogisticRegression(C=1, solver="lbfgs")`` (MAP only), same penalty.
2. Digits (300 training images, the report's MLP): last-layer Laplace (full GGN, prior by
   the evidence, probit predictive) fitted on the trained network: seconds to fit the
   Laplace, held-out NLL and ECE; the same for laplace-torch's ``Laplace(...,
   "lastlayer", "full")`` with ``optimize_prior_precision(method="marglik")``.
3. Calibration (issue 11): ``BayesianMLPClassifier(method="laplace")`` on breast cancer and
   digits, 70/30 stratified splits over several seeds: test NLL and ECE (15 bins) of the MAP
   network it wraps, of the default Laplace (``laplace_prior="auto"``: the evidence's prior
   unless the held-out rows find it under-confident) and of the Laplace with the evidence's
   prior, mean +- sd over the seeds.

Run: ``python benchmarks/bench_laplace.py`` (all), or from ``benchmarks/``
``python -c "import bench_laplace as b; b.calibration()"``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from _timing import compare, machine
from bayesdl.linear_model import BayesianLogisticRegression
from bayesdl.neural_network import BayesianMLPClassifier
from bayesdl.nn.laplace import Laplace
from bayesdl.uncertainty import expected_calibration_error, negative_log_likelihood


def logistic_fit_time():
    rng = np.random.default_rng(0)
    n, d = 200_000, 100
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d) / np.sqrt(d)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-2 * X @ w))).astype(int)
    ours = BayesianLogisticRegression(alpha=1.0)
    ref = LogisticRegression(C=1.0, solver="lbfgs", tol=1e-6, max_iter=1000)
    result = compare("BayesianLogisticRegression fit (MAP + covariance), n=200000 d=100",
                     lambda: ours.fit(X, y), lambda: ref.fit(X, y),
                     anchor_name="sklearn LogisticRegression(lbfgs)", repeats=5,
                     interleaved=True)
    print(f"  max |coef difference| = {np.abs(ours.coef_ - ref.coef_).max():.2e}; full-data "
          f"passes: {ours.n_gradient_passes_} gradient + {ours.n_hessian_passes_} Hessian "
          f"(scikit-learn: {ref.n_iter_[0]} L-BFGS iterations)")
    return result


def digits_last_layer():
    d = load_digits()
    Xtr, Xte, ytr, yte = train_test_split(d.data, d.target, train_size=300, random_state=0,
                                          stratify=d.target)
    clf = BayesianMLPClassifier((100,), method="laplace", max_epochs=400, learning_rate=3e-3,
                                prior_sigma=3.0, random_state=0).fit(Xtr, ytr)
    net = clf.network_
    Xtr_t, Xte_t = clf._standardise(Xtr), clf._standardise(Xte)
    ytr_t = torch.as_tensor(ytr)
    with torch.no_grad():
        map_dist = torch.distributions.Categorical(logits=net(Xte_t))
    rows = [("MAP network", 0.0, map_dist)]
    start = time.perf_counter()
    la = Laplace(net, "classification", hessian_structure="full").fit(Xtr_t, ytr_t)
    rows.append(("bayesdl last-layer Laplace (full, evidence, probit)", time.perf_counter() - start,
                 la.predict_dist(Xte_t)))
    try:
        from laplace import Laplace as TorchLaplace  # laplace-torch
    except ImportError:
        print("laplace-torch is not installed (pip install laplace-torch): skipped")
    else:
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(Xtr_t, ytr_t), batch_size=300)
        start = time.perf_counter()
        peer = TorchLaplace(net, "classification", subset_of_weights="last_layer",
                            hessian_structure="full")
        peer.fit(loader)
        peer.optimize_prior_precision(method="marglik")
        seconds = time.perf_counter() - start
        probs = peer(Xte_t, pred_type="glm", link_approx="probit")
        rows.append(("laplace-torch last-layer (full, marglik, probit)", seconds,
                     torch.distributions.Categorical(probs=probs)))
    for name, seconds, dist in rows:
        print(f"{name}: fit {seconds:.3f} s, NLL {negative_log_likelihood(dist, yte):.4f}, "
              f"ECE {expected_calibration_error(dist, yte):.4f}")


# the networks of the calibration benchmark (and of tests/neural_network/test_laplace_mlp.py)
CALIBRATION_DATA = {
    "breast cancer": (load_breast_cancer, dict(hidden_layer_sizes=(50,))),
    "digits": (load_digits, dict(hidden_layer_sizes=(100,), input_scaling="global")),
}


def calibration(seeds: int = 5, prior_sigma: float = 1.0):
    """Test NLL and ECE of the MAP network and its Laplace (default prior; evidence)."""
    torch.set_num_threads(1)
    for name, (load, params) in CALIBRATION_DATA.items():
        X, y = load(return_X_y=True)
        scores = {"MAP network": [], "Laplace, default prior (auto)": [],
                  "Laplace, evidence prior": []}
        for seed in range(seeds):
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed,
                                                  stratify=y)
            for prior, key in (("auto", "Laplace, default prior (auto)"),
                               ("marglik", "Laplace, evidence prior")):
                clf = BayesianMLPClassifier(method="laplace", prior_sigma=prior_sigma,
                                            laplace_prior=prior, random_state=seed,
                                            **params).fit(Xtr, ytr)
                scores[key].append(_nll_ece(clf.predict_dist(Xte), yte))
            with torch.no_grad():  # the same MAP network for both priors (same seed and rows)
                logits = clf.network_(clf._standardise(Xte))
            map_dist = torch.distributions.Categorical(logits=logits)
            scores["MAP network"].append(_nll_ece(map_dist, yte))
        base = np.array(scores["MAP network"])
        print(f"{name} (prior_sigma={prior_sigma}, {seeds} seeds): mean +- sd; "
              "seeds where lower than the MAP network's")
        for key, values in scores.items():
            v = np.array(values)
            print(f"  {key}: NLL {v[:, 0].mean():.4f} +- {v[:, 0].std(ddof=1):.4f} "
                  f"({(v[:, 0] < base[:, 0]).sum()}/{seeds}), ECE {100 * v[:, 1].mean():.2f}% "
                  f"+- {100 * v[:, 1].std(ddof=1):.2f} ({(v[:, 1] < base[:, 1]).sum()}/{seeds})")


def _nll_ece(dist, y):
    return negative_log_likelihood(dist, y), expected_calibration_error(dist, y, 15)


if __name__ == "__main__":
    print(machine())
    logistic_fit_time()
    digits_last_layer()
    calibration()
