"""Report section: PCA, probabilistic PCA with missing data and Bayesian PCA (PRML 12)."""

from __future__ import annotations

import warnings

import numpy as np

from ...datasets import load_digits
from ...decomposition import PCA, BayesianPCA, ProbabilisticPCA
from ...viz import decomposition as viz
from ..section import Section

TITLE = "Latent linear models"


def _ard_data(seed: int, n: int = 300):
    """PRML Figure 12.14's setting: 10-D data from a 3-D latent space plus noise."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(10, 3)) * np.array([3.0, 2.0, 1.5])
    return rng.normal(size=(n, 3)) @ W.T + 0.5 * rng.normal(size=(n, 10))


def _imputation(X, seed: int, quick: bool):
    """Hide 30% of the pixels at random; fill them by PPCA-EM and by column means."""
    rng = np.random.default_rng(seed)
    mask = rng.random(X.shape) < 0.3
    mask[mask.all(1), 0] = False
    Xm = np.where(mask, np.nan, X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a capped number of EM steps
        ppca = ProbabilisticPCA(10, solver="em", max_iter=15 if quick else 40, tol=1e-5,
                                random_state=seed).fit(Xm)
    filled = ppca.impute(Xm)
    col_means = np.nan_to_num(np.nanmean(Xm, 0))
    mean_filled = np.where(mask, col_means, X)
    rmse = {name: float(np.sqrt(((F - X)[mask] ** 2).mean()))
            for name, F in (("ppca", filled), ("mean", mean_filled))}
    return Xm, filled, mean_filled, rmse


def build(quick: bool = False, seed: int = 0) -> Section:
    digits = load_digits()
    X, y = digits.data, digits.target
    ppca = ProbabilisticPCA(2).fit(X)
    Z = ppca.transform(X)
    pca = PCA().fit(X)

    Xard = _ard_data(seed, 200 if quick else 300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bpca = BayesianPCA(max_iter=300 if quick else 1000, tol=1e-6).fit(Xard)
    ml = ProbabilisticPCA(9).fit(Xard)
    order = np.argsort(bpca.alpha_)  # the active columns first

    Xm, filled, mean_filled, rmse = _imputation(X, seed, quick)
    show = np.arange(8)
    figures = [
        ("The 1,797 8x8 digits projected to two dimensions by probabilistic PCA (posterior "
         "means E[z | x], PRML 12.48), coloured by class.",
         viz.latent_scatter(Z, y, "digits: PPCA latent space (q = 2)")),
        ("Explained variance of the digits' principal components: the first 10 of 64 "
         f"explain {pca.explained_variance_ratio_[:10].sum():.0%} of the variance.",
         viz.explained_variance(pca.explained_variance_ratio_)),
        ("Hinton diagrams of W for 300 points in 10 dimensions drawn from a 3-dimensional "
         "latent model (PRML Figure 12.14): maximum-likelihood PPCA with q = 9 uses every "
         "column, Bayesian PCA's ARD prior switches off all but "
         f"{bpca.n_effective_components_} (columns sorted by alpha).",
         viz.hinton([ml.components_.T, bpca.components_.T[:, order]],
                    ["maximum likelihood (q = 9)", "Bayesian PCA (ARD)"])),
        ("Digits with 30% of their pixels missing (red), filled by PPCA-EM (q = 10, the "
         "missing pixels marginalised out) and by each pixel's mean. RMSE over the missing "
         f"pixels: PPCA {rmse['ppca']:.2f}, mean imputation {rmse['mean']:.2f}.",
         viz.imputed_images([X[show], Xm[show], filled[show], mean_filled[show]],
                            [f"digit {y[i]}" for i in show],
                            ["original", "30% missing", "PPCA", "mean"])),
    ]
    table = {
        "digits: PPCA noise variance (q = 2)": round(float(ppca.noise_variance_), 3),
        "digits: variance explained by 10 components": round(
            float(pca.explained_variance_ratio_[:10].sum()), 4),
        "Bayesian PCA effective dimensionality (true 3, q = 9)": bpca.n_effective_components_,
        "imputation RMSE, PPCA (30% missing)": round(rmse["ppca"], 3),
        "imputation RMSE, mean imputation": round(rmse["mean"], 3),
    }
    summary = (
        "PCA finds the directions of maximum variance; probabilistic PCA turns them into a "
        "Gaussian density whose EM fit marginalises missing entries exactly, and Bayesian "
        "PCA's ARD prior chooses the latent dimension. All EM fits run on the shared "
        "sufficient-statistics engine (chunks, .npy streaming, torch.distributed).")
    return Section(title=TITLE, summary=summary, figures=figures, table=table)
