"""Synthetic data generators with explicit seeds."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state


def make_sinusoidal(n_samples: int = 10, noise_std: float = 0.3, *, random_state=None,
                    x_range=(0.0, 1.0), uniform_grid: bool = False):
    """PRML section 1.1: t = sin(2 pi x) + eps with eps ~ N(0, noise_std^2).

    ``x`` is drawn uniformly from ``x_range`` (or evenly spaced when ``uniform_grid``, as in
    PRML Figure 1.2). Returns ``(x, t)`` with ``x`` of shape (n, 1) and ``t`` of shape (n,).
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}.")
    if noise_std < 0:
        raise ValueError(f"noise_std must be non-negative, got {noise_std}.")
    rng = check_random_state(random_state)
    lo, hi = x_range
    x = np.linspace(lo, hi, n_samples) if uniform_grid else rng.uniform(lo, hi, n_samples)
    t = np.sin(2 * np.pi * x) + noise_std * rng.standard_normal(n_samples)
    return x[:, None], t


def make_gaussian_blobs(n_samples=300, means=((0, 0), (4, 4), (0, 5)), covariances=None,
                        weights=None, *, random_state=None):
    """Draw from a Gaussian mixture with given means, full covariances and weights.

    ``covariances`` is a (K, d, d) array (identity for each component when None); ``weights``
    sums to one (uniform when None). Returns ``(X, labels)`` of shapes (n, d) and (n,).
    """
    rng = check_random_state(random_state)
    means = np.asarray(means, dtype=float)
    k, d = means.shape
    covs = np.broadcast_to(np.eye(d), (k, d, d)) if covariances is None else np.asarray(covariances, float)
    if covs.shape != (k, d, d):
        raise ValueError(f"covariances must have shape {(k, d, d)}, got {covs.shape}.")
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (k,) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
        raise ValueError(f"weights must be {k} non-negative numbers summing to 1, got {w}.")
    labels = rng.choice(k, size=n_samples, p=w)
    # x = mu_k + L_k z with L_k L_k^T = Sigma_k (raises LinAlgError if Sigma_k is not PD).
    chol = np.linalg.cholesky(covs)
    z = rng.standard_normal((n_samples, d))
    X = means[labels] + np.einsum("nij,nj->ni", chol[labels], z)
    return X, labels
