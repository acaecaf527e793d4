"""Report section: K-means, EM for Gaussian mixtures and the variational GMM (PRML 9, 10.2)."""

from __future__ import annotations

import warnings

import numpy as np

from ...cluster import KMeans
from ...datasets import load_faithful, make_gaussian_blobs
from ...mixture import BayesianGaussianMixture, GaussianMixture
from ...viz import mixtures as viz
from ..section import Section

TITLE = "Mixtures"

# A deliberately poor start on standardised Old Faithful, as in PRML Figures 9.1 and 9.8.
START = np.array([[-0.5, 1.5], [0.5, -1.5]])


def _em_snapshots(X, stages):
    """EM on standardised Old Faithful from PRML's deliberately poor start (Figure 9.8)."""
    gm = GaussianMixture(2, weights_init=[0.5, 0.5], means_init=START,
                         precisions_init=np.stack([np.eye(2) * 4] * 2), warm_start=True,
                         max_iter=0, tol=0.0)
    snapshots, done = [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one EM step per fit: "did not converge" is expected
        gm.fit(X)
        gm.max_iter = 1
        for stage in stages:
            while done < stage:
                gm.fit(X)
                done += 1
            snapshots.append((gm.means_, gm.covariances_, gm.predict_proba(X)))
    return gm, snapshots


def _kmeans_steps(X, n_steps):
    """J (PRML 9.1) after each E step and each M step of K-means (Figure 9.2)."""
    km = KMeans(2, init=START, warm_start=True, max_iter=1,
                tol=0.0)
    J_e, J_m = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n_steps):
            centres = km.cluster_centers_ if hasattr(km, "cluster_centers_") else km.init
            d2 = ((X[:, None, :] - centres[None]) ** 2).sum(-1)
            labels = d2.argmin(1)
            J_e.append(d2.min(1).sum())  # after the E step: assignments to the old centres
            km.fit(X)  # one Lloyd step: the M step moves each centre to its points' mean
            J_m.append(((X - km.cluster_centers_[labels]) ** 2).sum())
    return np.array(J_e), np.array(J_m)


def build(quick: bool = False, seed: int = 0) -> Section:
    faithful = load_faithful().data
    X = (faithful - faithful.mean(0)) / faithful.std(0)  # standardised, as in PRML
    stages = [0, 1, 2, 5, 20]
    gm, snapshots = _em_snapshots(X, stages)
    titles = ["initialisation"] + [f"L = {s}" for s in stages[1:]]
    J_e, J_m = _kmeans_steps(X, 4)

    X3, _ = make_gaussian_blobs(500, means=((0, 0), (4, 4), (0, 5)), random_state=seed)
    gm3 = GaussianMixture(3, random_state=seed).fit(X3)

    Xvb, _ = make_gaussian_blobs(300 if quick else 600, means=((0, 0), (8, 8), (0, 10)),
                                 random_state=seed + 1)
    vb = BayesianGaussianMixture(n_components=10, weight_concentration_prior=1e-3,
                                 weight_concentration_prior_type="dirichlet_distribution",
                                 max_iter=500, random_state=seed).fit(Xvb)

    selected = {k: GaussianMixture(k, random_state=seed).fit(X).bic(X) for k in range(1, 6)}
    figures = [
        ("EM for a two-component Gaussian mixture on standardised Old Faithful: component "
         "ellipses (one standard deviation) after initialisation and after L = 1, 2, 5, 20 "
         "EM cycles, points coloured by their responsibilities (PRML Figure 9.8).",
         viz.em_steps(X, snapshots, titles, xlabel="eruption duration (standardised)",
                      ylabel="waiting time (standardised)")),
        ("K-means on the same data: the objective J after each E step (blue) and M step "
         "(red); both steps can only lower it (PRML Figure 9.2).",
         viz.kmeans_objective(J_e, J_m)),
        ("A three-component mixture fitted by EM to 500 points: each point's colour mixes "
         "red, blue and green in proportion to its responsibilities (PRML Figure 9.5c).",
         viz.responsibilities(X3, gm3.predict_proba(X3), gm3.means_, gm3.covariances_)),
        ("Variational GMM started with 10 components on three clusters, with a Dirichlet "
         "prior alpha_0 = 1e-3: the unneeded components' weights collapse to zero "
         "(PRML section 10.2).",
         viz.vb_pruning(Xvb, vb.weights_, vb.means_, vb.covariances_, vb.weight_threshold)),
    ]
    table = {
        "Old Faithful EM: mean log-likelihood after 20 cycles": round(float(gm.score(X)), 4),
        "Old Faithful: components chosen by BIC (1..5)": min(selected, key=selected.get),
        "K-means J after 4 steps": round(float(J_m[-1]), 3),
        "VB-GMM active components (of 10)": vb.n_active_components_,
        "VB-GMM ELBO": round(float(vb.elbo_), 2),
    }
    summary = (
        "K-means, Gaussian mixtures (EM) and the variational Bayesian mixture share one "
        "engine that sums sufficient statistics over chunks of the data, so the same code "
        "fits arrays, memory-mapped files and torch.distributed shards.")
    return Section(title=TITLE, summary=summary, figures=figures, table=table)
