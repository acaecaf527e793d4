"""Bayesian model comparison by the evidence (PRML section 3.4, Figure 3.14)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import Pipeline

from .basis import PolynomialBasis
from .bayesian_linear import BayesianLinearRegression


@dataclass
class DegreeSelection:
    """Result of :func:`select_degree`: the log evidence of each degree and the winner."""

    degrees: np.ndarray  # (M,)
    log_evidence: np.ndarray  # (M,) ln p(t | M) at each model's alpha, beta
    best_degree: int
    best_model: Pipeline  # PolynomialBasis(best_degree) -> BayesianLinearRegression, fitted


def select_degree(x, t, degrees=range(10), **blr_params) -> DegreeSelection:
    """Fit a polynomial Bayesian linear regression of each degree and compare evidences.

    ``blr_params`` go to :class:`BayesianLinearRegression`. With ``fit_intercept=False`` the
    constant phi_0 = 1 is part of the penalised weights, as in PRML; fixing ``alpha`` and
    ``beta`` (e.g. ``alpha=5e-3, beta=11.1``) reproduces PRML Figure 3.14, leaving them None
    maximises the evidence for each degree. Degrees whose fit is not possible with the data
    (more monomials than useful) still get an evidence: it simply penalises them.
    """
    degrees = np.asarray(list(degrees), dtype=int)
    if degrees.size == 0 or np.any(degrees < 0):
        raise ValueError(f"degrees must be non-negative integers, got {degrees.tolist()}.")
    x = np.asarray(x, dtype=float)
    x = x[:, None] if x.ndim == 1 else x
    include_bias = not blr_params.get("fit_intercept", True)
    models, evidence = [], []
    for m in degrees:
        if m == 0 and not include_bias:
            raise ValueError("degree 0 needs fit_intercept=False (the constant basis function).")
        model = Pipeline([("basis", PolynomialBasis(degree=int(m), include_bias=include_bias)),
                          ("blr", BayesianLinearRegression(**blr_params))]).fit(x, t)
        models.append(model)
        evidence.append(model[-1].log_evidence_)
    evidence = np.array(evidence)
    best = int(np.argmax(evidence))
    return DegreeSelection(degrees, evidence, int(degrees[best]), models[best])
