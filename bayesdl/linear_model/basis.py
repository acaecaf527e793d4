"""Basis-function transformers phi(x) for linear models (PRML section 3.1, Figure 3.1).

They are scikit-learn transformers, so a basis and a regressor compose in a ``Pipeline``::

    make_pipeline(GaussianBasis(n_centers=9), BayesianLinearRegression())

The Gaussian and sigmoidal bases act on each input feature separately (an additive model):
each of the D features gets ``n_centers`` functions, centred evenly over that feature's
training range, so the output has D * n_centers columns.
"""

from __future__ import annotations

from itertools import combinations_with_replacement
from numbers import Integral, Real

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ..io import Persistable


class PolynomialBasis(Persistable, TransformerMixin, BaseEstimator):
    """phi_j(x) = x^j, j = 1..degree (PRML 1.1); with several features, every monomial.

    Parameters
    ----------
    degree : int, default=3
    include_bias : bool, default=False
        Add phi_0(x) = 1. Leave it False when the regressor fits its own intercept.

    Attributes
    ----------
    powers_ : ndarray (n_output_features, n_features) of the exponent of each input in each
        output column.
    """

    _parameter_constraints: dict = {
        "degree": [Interval(Integral, 0, None, closed="left")],
        "include_bias": ["boolean"],
    }

    def __init__(self, degree=3, include_bias=False):
        self.degree = degree
        self.include_bias = include_bias

    def fit(self, X, y=None):
        self._validate_params()
        X = validate_data(self, X, dtype=np.float64)
        d = X.shape[1]
        first = 0 if self.include_bias else 1
        powers = [np.bincount(c, minlength=d) for k in range(first, self.degree + 1)
                  for c in combinations_with_replacement(range(d), k)]
        if not powers:
            raise ValueError("degree=0 with include_bias=False gives no features; "
                             "use degree >= 1 or include_bias=True.")
        self.powers_ = np.array(powers, dtype=np.int64).reshape(len(powers), d)
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        # phi_j(x) = prod_i x_i^{p_ji}  -> (N, n_output_features)
        return np.prod(X[:, None, :] ** self.powers_[None], axis=2)

    def get_feature_names_out(self, input_features=None):
        """Output names as scikit-learn's ``PolynomialFeatures`` gives them: the monomial of
        the input names (``feature_names_in_`` or ``x0, x1, ...``), e.g. ``"x0 x1^2"``."""
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        return np.array([" ".join(f"{n}^{p}" if p > 1 else n for n, p in zip(names, row) if p)
                         or "1" for row in self.powers_], dtype=object)


class _ScalarBasis(Persistable, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared fit/transform of bases phi_j(x) = h((x - mu_j) / s) applied per feature.

    Output names follow scikit-learn's convention for new features, the lower-case class
    name and the column number (``gaussianbasis0``, ...): column ``d * n_centers + j`` is
    centre j of input feature d.
    """

    _parameter_constraints: dict = {
        "n_centers": [Interval(Integral, 1, None, closed="left")],
        "width": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, n_centers=9, width=None):
        self.n_centers = n_centers
        self.width = width

    def fit(self, X, y=None):
        self._validate_params()
        X = validate_data(self, X, dtype=np.float64)
        lo, hi = X.min(axis=0), X.max(axis=0)  # (D,)
        # mu_j evenly spaced over each feature's range -> (D, n_centers)
        self.centers_ = lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, self.n_centers)[None]
        if self.width is not None:
            width = np.full(X.shape[1], float(self.width))
        else:
            # s = spacing between neighbouring centres (the whole range for one centre);
            # a constant feature gets s = 1 so phi stays finite.
            width = (hi - lo) / max(self.n_centers - 1, 1)
            width[width <= 0] = 1.0
        self.width_ = width
        return self

    @property
    def _n_features_out(self) -> int:
        """D * n_centers output columns (read by ``get_feature_names_out``)."""
        return self.centers_.size

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        u = (X[:, :, None] - self.centers_[None]) / self.width_[None, :, None]  # (N, D, K)
        return self._h(u).reshape(X.shape[0], -1)


class GaussianBasis(_ScalarBasis):
    """phi_j(x) = exp(-(x - mu_j)^2 / (2 s^2))  (PRML 3.4), ``n_centers`` per feature.

    Parameters
    ----------
    n_centers : int, default=9
        Number of centres mu_j per feature, evenly spaced over the training range.
    width : float or None, default=None
        The spatial scale s; ``None`` uses the spacing between neighbouring centres.
    """

    @staticmethod
    def _h(u):
        return np.exp(-0.5 * u**2)


class SigmoidBasis(_ScalarBasis):
    """phi_j(x) = sigma((x - mu_j) / s) with the logistic sigma  (PRML 3.5-3.6).

    Parameters are those of :class:`GaussianBasis`.
    """

    @staticmethod
    def _h(u):
        return expit(u)
