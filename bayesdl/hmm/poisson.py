"""PoissonHMM: hidden Markov model with independent Poisson counts per feature,
``p(x | z = k) = prod_d Poisson(x_d | lambda_kd)``, as hmmlearn's ``PoissonHMM``."""

from __future__ import annotations

from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from ._base import BaseHMM


class PoissonHMM(BaseHMM):
    """Hidden Markov model with Poisson emissions, fitted by Baum-Welch on the EM engine.

    Parameters follow hmmlearn's ``PoissonHMM``: a Gamma(``lambdas_prior``,
    ``lambdas_weight``) prior on each rate (shape, rate; 0 and 0 give maximum likelihood).
    """

    _parameter_constraints: dict = {
        **BaseHMM._parameter_constraints,
        "lambdas_prior": [Interval(Real, 0, None, closed="left"), "array-like"],
        "lambdas_weight": [Interval(Real, 0, None, closed="left"), "array-like"],
    }
    _emission_letters = "l"
    _emission_parameters = ("lambdas_",)

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0,
                 lambdas_prior=0.0, lambdas_weight=0.0, algorithm="viterbi", random_state=None,
                 n_iter=10, tol=1e-2, verbose=False, params="stl", init_params="stl", n_init=1,
                 warm_start=False, chunk_size=None, device="cpu", dtype="float64"):
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.n_init = n_init
        self.warm_start = warm_start
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype

    def _check_X(self, X, *, reset: bool) -> np.ndarray:
        X = super()._check_X(X, reset=reset)
        if (X < 0).any() or (X != np.round(X)).any():
            raise ValueError("PoissonHMM expects counts (non-negative integers) in X.")
        return X

    def _init_emissions(self, X, random_state) -> None:
        K, d = self.n_components, self.n_features_in_
        if "l" in self.init_params or not hasattr(self, "lambdas_"):
            # hmmlearn's start: rates drawn from a Gamma with the data's mean and variance
            mean, var = X.mean(), max(X.var(), 1e-3)
            self.lambdas_ = random_state.gamma(shape=max(mean, 1e-3) ** 2 / var,
                                               scale=var / max(mean, 1e-3), size=(K, d))
        self.lambdas_ = np.asarray(self.lambdas_, dtype=np.float64)
        if self.lambdas_.shape != (K, d):
            raise ValueError(f"lambdas_ must have shape {(K, d)}, got {self.lambdas_.shape}.")

    def _emission_constants(self) -> dict:
        lam = self._to_torch(self.lambdas_)  # (K, d)
        return {"log_lambda": torch.log(lam), "lambda_sum": lam.sum(1)}

    def _log_emission(self, X, mask, c):
        """(B, T, K) ``sum_d [x_d ln lambda_kd - lambda_kd - ln x_d!]``."""
        return (X @ c["log_lambda"].T - c["lambda_sum"]
                - torch.lgamma(X + 1).sum(-1, keepdim=True))

    def _emission_stats(self, X, mask, gamma, c) -> dict:
        return {"obs": torch.einsum("btk,btd->kd", gamma, X)}  # (K, d)

    def _m_step_emissions(self, stats, visited) -> None:
        if "l" in self.params:
            a, b = np.asarray(self.lambdas_prior), np.asarray(self.lambdas_weight)
            # the Gamma posterior mean: (a + sum_t gamma_tk x_t) / (b + sum_t gamma_tk)
            lam = (a + stats["obs"]) / np.maximum(b + stats["post"][:, None], 1e-300)
            self.lambdas_ = np.where(visited[:, None], lam, self.lambdas_)

    def _sample_emission(self, states, generator):
        return torch.poisson(self._to_torch(self.lambdas_)[states], generator=generator)
