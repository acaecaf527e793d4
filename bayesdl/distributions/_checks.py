"""Input conversion and validation shared by the distributions package.

Every public function of :mod:`bayesdl.distributions` accepts numpy arrays, Python sequences or
torch tensors and computes in torch (float64 unless the input tensor is already floating point).
The checks here turn bad input into a ``ValueError`` that names the problem and the fix.
"""

from __future__ import annotations

import numpy as np
import torch


def as_tensor(x, name: str, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x`` as a floating tensor (float64 for non-tensor or integer input), checked finite."""
    if isinstance(x, torch.Tensor):
        t = x if x.is_floating_point() and dtype is None else x.to(dtype or torch.float64)
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype or torch.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} must be numeric (array-like or tensor); got {type(x).__name__}: {e}") from e
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values; remove or impute them first.")
    return t


def as_samples(x, name: str = "x", *, event_dim: int = 0, min_samples: int = 1) -> torch.Tensor:
    """Data with samples along dim 0 and at least ``event_dim`` trailing event dimensions."""
    t = as_tensor(x, name)
    if t.dim() < 1 + event_dim:
        need = "(N,)" if event_dim == 0 else "(N, " + ", ".join("D" * event_dim) + ")"
        raise ValueError(f"{name} must have shape {need} with samples along the first axis; "
                         f"got shape {tuple(t.shape)}.")
    if t.shape[0] < min_samples:
        raise ValueError(f"{name} needs at least {min_samples} sample(s) along the first axis; "
                         f"got {t.shape[0]}.")
    return t


def check_positive(t: torch.Tensor, name: str) -> torch.Tensor:
    if not (t > 0).all():
        raise ValueError(f"{name} must be strictly positive; got minimum {t.min().item():g}.")
    return t


def check_probabilities(t: torch.Tensor, name: str, *, open_interval: bool = False) -> torch.Tensor:
    """Values in [0, 1] (or (0, 1) with ``open_interval``)."""
    bad = (t <= 0) | (t >= 1) if open_interval else (t < 0) | (t > 1)
    if bad.any():
        interval = "(0, 1) (strictly inside)" if open_interval else "[0, 1]"
        raise ValueError(f"{name} must lie in {interval}; found {bad.sum().item()} value(s) outside, "
                         f"e.g. {t[bad].flatten()[0].item():g}.")
    return t


def check_simplex(t: torch.Tensor, name: str, *, strictly_positive: bool = False,
                  atol: float = 1e-6) -> torch.Tensor:
    """Rows (last axis) are probability vectors: non-negative and summing to one."""
    check_probabilities(t, name)
    if strictly_positive and (t <= 0).any():
        raise ValueError(f"{name} contains zero proportions; the Dirichlet has support only on the "
                         "open simplex. Add a small pseudo-count before normalising, e.g. "
                         "(counts + 0.5) / (counts + 0.5).sum(-1, keepdims=True).")
    err = (t.sum(-1) - 1).abs().max().item()
    if err > atol:
        raise ValueError(f"the rows of {name} must sum to 1 (last axis); the largest deviation is "
                         f"{err:.3g}. Normalise them: x / x.sum(-1, keepdims=True).")
    return t


def check_counts(t: torch.Tensor, name: str, *, upper=None) -> torch.Tensor:
    """Non-negative integers (optionally at most ``upper``)."""
    if (t < 0).any():
        raise ValueError(f"{name} are counts and must be non-negative; found {t.min().item():g}.")
    if (t != t.round()).any():
        raise ValueError(f"{name} are counts and must be whole numbers; found "
                         f"{t[t != t.round()].flatten()[0].item():g}.")
    if upper is not None and (t > upper).any():
        raise ValueError(f"{name} cannot exceed the number of trials (total_count); found "
                         f"{t.max().item():g} > {torch.as_tensor(upper).min().item():g}.")
    return t


def check_binary(t: torch.Tensor, name: str) -> torch.Tensor:
    if not ((t == 0) | (t == 1)).all():
        raise ValueError(f"{name} are Bernoulli outcomes and must be 0 or 1; found "
                         f"{t[(t != 0) & (t != 1)].flatten()[0].item():g}. Use a Binomial model "
                         "for counts out of several trials.")
    return t


def check_positive_definite(matrix: torch.Tensor, name: str) -> torch.Tensor:
    """A symmetric positive-definite matrix (batch allowed); returns its Cholesky factor."""
    if matrix.dim() < 2 or matrix.shape[-1] != matrix.shape[-2]:
        raise ValueError(f"{name} must be a square (D, D) matrix; got shape {tuple(matrix.shape)}.")
    tol = max(1e-8, 100 * torch.finfo(matrix.dtype).eps)
    if not torch.allclose(matrix, matrix.mT, rtol=tol, atol=tol * 1e-2):
        raise ValueError(f"{name} must be symmetric; symmetrise it with (A + A.T) / 2.")
    chol, info = torch.linalg.cholesky_ex(matrix)
    if (info != 0).any():
        raise ValueError(f"{name} is not positive definite (Cholesky failed); pass a symmetric "
                         "positive-definite matrix, e.g. add a small multiple of the identity.")
    return chol


def check_event_size(t: torch.Tensor, size: int, name: str, what: str) -> torch.Tensor:
    if t.shape[-1] != size:
        raise ValueError(f"{name} has {t.shape[-1]} {what} on its last axis but the model has "
                         f"{size}; pass data of shape (N, {size}).")
    return t
