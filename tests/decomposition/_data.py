"""Data from a known low-rank linear-Gaussian model, shared by the decomposition tests."""

import numpy as np


def low_rank(n=500, d=8, q=3, noise=0.5, seed=0, mean=5.0):
    """``X = Z W^T + mu + noise``, with well separated loadings; returns ``(X, W)``."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, q)) * np.linspace(3.0, 1.5, q)
    X = rng.normal(size=(n, q)) @ W.T + noise * rng.normal(size=(n, d)) + mean
    return X, W


def with_missing(X, fraction, seed=1):
    """A copy of ``X`` with ``fraction`` of its entries NaN (no row or column left empty)."""
    rng = np.random.default_rng(seed)
    mask = rng.random(X.shape) < fraction
    mask[mask.all(1), 0] = False
    Xm = X.copy()
    Xm[mask] = np.nan
    return Xm, mask
