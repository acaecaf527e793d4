"""Gaussian sufficient statistics and log-densities for all mixture components at once.

A Gaussian log-density is linear in the features ``T(x) = (vech(x x^T), x)``:

    log N(x | mu_k, Lambda_k^{-1}) = -1/2 x^T Lambda_k x + x^T Lambda_k mu_k
                                     - 1/2 mu_k^T Lambda_k mu_k + 1/2 log|Lambda_k| - D/2 log 2 pi

so the E-step for every component is **one** GEMM ``W T(X)`` (K, F) x (F, N), and the
statistics the M-step needs (PRML 9.17, 9.24, 9.25: ``N_k``, ``sum_n r_nk x_n``,
``sum_n r_nk x_n x_n^T``) are the other GEMM ``T(X) R^T`` (F, N) x (N, K). Only the upper
triangle of ``x x^T`` is formed, so both GEMMs do half the work of a per-component Mahalanobis
loop. The features depend on the covariance type:

- full:      ``(x_i x_j for i <= j, x)``   F = D(D+1)/2 + D
- diag:      ``(x_i^2, x)``                F = 2D
- spherical: ``(|x|^2, x)``               F = 1 + D
- tied:      ``x`` (the shared quadratic term is one row-wise product; the M-step needs only
             the total scatter ``X^T X``)

The chunk's features are stored feature-major, as the columns of ``T`` (F, N), and the
log-densities and responsibilities component-major (K, N): with N the long dimension of both
GEMMs' contiguous operands, OpenBLAS ran the pair about 25% faster on this project's AMD hosts
than with row-major (N, F) features (docs/benchmarks.md), and the per-row reductions over K
become elementwise operations between K contiguous rows.

Rows are shifted by a fixed vector ``c`` (near the data mean; the estimator fixes it for a
whole fit) before the features are formed, so ``S2/N - mu mu^T`` does not cancel
catastrophically on data far from the origin; covariances are shift-invariant and means are
shifted back.

Precisions are carried as ``U_k`` with ``Lambda_k = U_k U_k^T`` (``U_k`` upper triangular,
scikit-learn's ``precisions_cholesky_``); the M-step formulas match scikit-learn's
``_estimate_gaussian_parameters`` exactly, including ``N_k + 10 eps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.linalg import cholesky, host_matmul, inverse_cholesky_transpose

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

CHOLESKY_ERROR = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples, or constant "
    "features). Try to decrease the number of components, increase reg_covar "
    "(currently {reg_covar:g}), or scale the input data."
)


def _triu(d: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    i, j = torch.triu_indices(d, d, device=device)
    return i, j


def features(X: torch.Tensor, covariance_type: str) -> torch.Tensor:
    """``T(x)`` of each row of ``X`` (N, D) as the columns of an (F, N) matrix (see the module
    docstring)."""
    Xt = X.T.contiguous()  # (D, N)
    if covariance_type == "full":
        D, N = Xt.shape
        q = D * (D + 1) // 2
        Z = Xt.new_empty(q + D, N)  # (D(D+1)/2 + D, N)
        start = 0
        for i in range(D):  # row-major upper triangle: x_i * (x_i, ..., x_D)
            torch.mul(Xt[i : i + 1], Xt[i:], out=Z[start : start + D - i])
            start += D - i
        Z[q:] = Xt
        return Z
    if covariance_type == "diag":
        return torch.cat([Xt * Xt, Xt])  # (2D, N)
    if covariance_type == "spherical":
        return torch.cat([(Xt * Xt).sum(0, keepdim=True), Xt])  # (1 + D, N)
    return Xt  # tied: (D, N)


def n_statistics_features(d: int, covariance_type: str) -> int:
    """F, the width of ``T(x)`` for ``d`` features (see the module docstring)."""
    return {"full": d * (d + 1) // 2 + d, "diag": 2 * d, "spherical": 1 + d,
            "tied": d}[covariance_type]


@dataclass
class LogProbCoefficients:
    """``log N(x | mu_k, Lambda_k^{-1}) = W_k T(x - c) + b_k (- 1/2 |(x - c)^T U|^2 if tied)``."""

    W: torch.Tensor  # (K, F)
    b: torch.Tensor  # (K,)
    shift: torch.Tensor  # (D,)
    covariance_type: str
    U_tied: torch.Tensor | None = None  # (D, D)

    def features(self, X: torch.Tensor) -> torch.Tensor:
        return features(X - self.shift, self.covariance_type)

    def log_prob(self, X: torch.Tensor, Z: torch.Tensor | None = None,
                 offset: torch.Tensor | None = None) -> torch.Tensor:
        """(K, N) component log-densities plus ``offset`` (K,); ``Z`` (F, N) are the features
        if already computed."""
        Z = self.features(X) if Z is None else Z
        b = self.b if offset is None else self.b + offset  # (K,)
        log_prob = host_matmul(self.W, Z).add_(b[:, None])  # (K, N)
        if self.U_tied is not None:
            # -1/2 (x-c)^T Lambda (x-c) = -1/2 |U^T (x-c)|^2, shared by all components.
            log_prob = log_prob - 0.5 * ((self.U_tied.T @ Z) ** 2).sum(0)
        return log_prob


def responsibilities(log_prob: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PRML 9.23 for each row n: ``(log sum_k exp a_kn, gamma_kn = exp a_kn / sum_j exp a_jn)``
    for the weighted log-densities ``a`` (K, N), in five passes over (K, N) (max, subtract and
    exp, sums, divide; no second exp). A row of ``-inf`` gets ``-inf`` and zeros."""
    m = log_prob.amax(0).nan_to_num_(neginf=0.0)  # (N,)
    e = (log_prob - m).exp_()  # (K, N) exp(a - max_k a) in [0, 1]
    s = e.sum(0)  # (N,) >= 1 unless the row is all -inf (then 0)
    log_norm = m + s.log()  # (N,) log sum_k exp a = m + log sum_k exp(a - m)
    return log_norm, e.div_(s.clamp_min_(1.0))


def log_det_cholesky(U: torch.Tensor, covariance_type: str, n_features: int) -> torch.Tensor:
    """``log|U_k| = 1/2 log|Lambda_k|`` per component ((K,), or a scalar when tied)."""
    if covariance_type in ("full", "tied"):
        return torch.log(U.diagonal(dim1=-2, dim2=-1)).sum(-1)
    if covariance_type == "diag":
        return torch.log(U).sum(-1)
    return n_features * torch.log(U)


def log_prob_coefficients(means, U, covariance_type: str, shift) -> LogProbCoefficients:
    """Coefficients of the Gaussian log-densities (module docstring) for shifted rows."""
    K, D = means.shape
    m = means - shift  # (K, D) means in shifted coordinates
    log_det = log_det_cholesky(U, covariance_type, D)
    U_tied = None
    if covariance_type == "full":
        P = U @ U.mT  # (K, D, D) Lambda_k
        Pm = (P @ m.unsqueeze(-1)).squeeze(-1)  # (K, D) Lambda_k mu_k
        i, j = _triu(D, means.device)
        # -1/2 x^T Lambda x = sum_{i<=j} c_ij x_i x_j with c_ii = -1/2 L_ii, c_ij = -L_ij.
        off = torch.where(i == j, -0.5, -1.0).to(P)
        W = torch.cat([P[:, i, j] * off, Pm], dim=1)  # (K, F)
    elif covariance_type == "tied":
        P = U @ U.T  # (D, D)
        Pm = m @ P  # (K, D)
        W, U_tied = Pm, U  # (K, D), (D, D)
    elif covariance_type == "diag":
        p = U * U  # (K, D) diagonal precisions
        Pm = p * m
        W = torch.cat([-0.5 * p, Pm], dim=1)  # (K, 2D)
    else:
        p = U * U  # (K,) spherical precisions
        Pm = p[:, None] * m
        W = torch.cat([-0.5 * p[:, None], Pm], dim=1)  # (K, 1 + D)
    b = -0.5 * (m * Pm).sum(1) - 0.5 * D * math.log(2 * math.pi) + log_det  # (K,)
    return LogProbCoefficients(W, b, shift, covariance_type, U_tied)


def chunk_statistics(Z: torch.Tensor, resp: torch.Tensor, covariance_type: str) -> dict:
    """Summable statistics of one chunk from its features ``Z`` (F, N) and responsibilities
    ``resp`` (K, N): ``N_k`` and ``T(X) R^T`` (F, K) (plus ``X^T X`` (D, D) if tied)."""
    stats = {"N": resp.sum(1), "ZR": host_matmul(Z, resp.T)}  # (K,), (F, K)
    if covariance_type == "tied":
        stats["XX"] = Z @ Z.T  # (D, D)
    return stats


def moments(stats: dict, covariance_type: str, n_features: int):
    """Unpack summed statistics into ``N_k`` (K,), ``S1_k = sum r x`` (K, D) and ``S2``.

    ``S2`` is ``sum_n r_nk x x^T`` (K, D, D) for full, ``sum_n x x^T`` (D, D) for tied,
    ``sum_n r_nk x_i^2`` (K, D) for diag and ``sum_n r_nk |x|^2`` (K,) for spherical.
    """
    D, ZR = n_features, stats["ZR"]
    if covariance_type == "full":
        q = D * (D + 1) // 2
        i, j = _triu(D, ZR.device)
        S2 = ZR.new_zeros(ZR.shape[1], D, D)
        S2[:, i, j] = ZR[:q].T
        S2[:, j, i] = ZR[:q].T
        return stats["N"], ZR[q:].T, S2
    if covariance_type == "diag":
        return stats["N"], ZR[D:].T, ZR[:D].T
    if covariance_type == "spherical":
        return stats["N"], ZR[1:].T, ZR[0]
    return stats["N"], ZR.T, stats["XX"]


def estimate_gaussian_parameters(N, S1, S2, reg_covar: float, covariance_type: str, eps: float):
    """PRML 9.24-9.27 from the moments: ``(N_k + 10 eps, mu_k, Sigma_k + reg_covar I)``.

    As in scikit-learn, ``N_k`` gets ``10 eps`` so an empty component gives finite means.
    """
    nk = N + 10 * eps  # (K,)
    means = S1 / nk[:, None]  # (K, D) PRML 9.24
    D = means.shape[1]
    eye = torch.eye(D, dtype=means.dtype, device=means.device)
    if covariance_type == "full":
        # PRML 9.25: sum_n r (x - mu)(x - mu)^T = S2 - S1 mu^T - mu S1^T + N mu mu^T
        outer = S1[:, :, None] * means[:, None, :]  # (K, D, D)
        scatter = S2 - outer - outer.mT + N[:, None, None] * means[:, :, None] * means[:, None, :]
        cov = scatter / nk[:, None, None] + reg_covar * eye
    elif covariance_type == "tied":
        # sum_k sum_n r (x - mu_k)(x - mu_k)^T / N = (X^T X - sum_k N_k mu_k mu_k^T) / N
        cov = (S2 - (nk[:, None] * means).T @ means) / nk.sum() + reg_covar * eye
    elif covariance_type == "diag":
        cov = S2 / nk[:, None] - means**2 + reg_covar  # (K, D)
    else:
        cov = S2 / (nk * D) - (means**2).mean(1) + reg_covar  # (K,)
    return nk, means, cov


def precision_cholesky(cov: torch.Tensor, covariance_type: str, reg_covar: float) -> torch.Tensor:
    """``U`` with ``U U^T = Sigma^{-1}`` (full/tied) or ``1/sqrt(sigma^2)`` (diag/spherical).

    Raises a ``ValueError`` that says what to change when a covariance is not positive
    definite.
    """
    error = CHOLESKY_ERROR.format(reg_covar=reg_covar)
    if cov.dtype == torch.float32:
        error += " The numerical accuracy can also be improved by passing dtype='float64'."
    if covariance_type in ("full", "tied"):
        return inverse_cholesky_transpose(cholesky(cov, error=error))
    if not torch.all(cov > 0):
        raise ValueError(error)
    return torch.rsqrt(cov)


def precision_cholesky_from_precisions(P: torch.Tensor, covariance_type: str) -> torch.Tensor:
    """``U`` upper triangular with ``U U^T = P`` (the reversed-order Cholesky of ``P``)."""
    if covariance_type in ("full", "tied"):
        # With J the exchange matrix, J P J = L L^T gives P = (J L J)(J L J)^T, J L J upper.
        flip = P.flip(-1, -2)
        L = cholesky(flip, error="precisions_init must be symmetric positive definite.")
        return L.flip(-1, -2)
    return torch.sqrt(P)


def precisions_from_cholesky(U: torch.Tensor, covariance_type: str) -> torch.Tensor:
    """``Lambda = U U^T`` (full/tied) or ``U^2`` (diag/spherical)."""
    return U @ U.mT if covariance_type in ("full", "tied") else U * U


def covariances_from_cholesky(U: torch.Tensor, covariance_type: str) -> torch.Tensor:
    """``Sigma = (U U^T)^{-1} = U^{-T} U^{-1}`` (full/tied) or ``1/U^2`` (diag/spherical)."""
    if covariance_type in ("full", "tied"):
        eye = torch.eye(U.shape[-1], dtype=U.dtype, device=U.device).expand_as(U)
        Uinv = torch.linalg.solve_triangular(U, eye, upper=True)
        return Uinv.mT @ Uinv
    return 1.0 / (U * U)
