"""CategoricalHMM: hidden Markov model with discrete emissions ``p(x = s | z = k) = B_ks``
(PRML 13.22), as hmmlearn's ``CategoricalHMM``. ``X`` is (N, 1) of symbols 0..S-1."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from ._base import BaseHMM


class CategoricalHMM(BaseHMM):
    """Hidden Markov model with categorical emissions, fitted by Baum-Welch on the EM engine.

    Parameters follow hmmlearn's ``CategoricalHMM``: ``n_features`` is the number of symbols
    (None: one more than the largest symbol seen in ``fit``), ``emissionprob_prior`` the
    Dirichlet prior on each row of ``emissionprob_`` (K, n_features).
    """

    _parameter_constraints: dict = {
        **BaseHMM._parameter_constraints,
        "emissionprob_prior": [Interval(Real, 0, None, closed="neither"), "array-like"],
        "n_features": [Interval(Integral, 1, None, closed="left"), None],
    }
    _emission_letters = "e"
    _emission_parameters = ("emissionprob_",)

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0,
                 emissionprob_prior=1.0, n_features=None, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="ste",
                 init_params="ste", n_init=1, warm_start=False, chunk_size=None, device="cpu",
                 dtype="float64"):
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features
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
        if X.shape[1] != 1 or (X < 0).any() or (X != np.round(X)).any():
            raise ValueError("CategoricalHMM expects X of shape (n_samples, 1) holding symbols "
                             "0, 1, 2, ... (non-negative integers); got shape "
                             f"{X.shape}. Encode categories with sklearn's OrdinalEncoder.")
        n_symbols = getattr(self, "n_symbols_", None) if not reset else None
        if n_symbols is not None and X.max() >= n_symbols:
            raise ValueError(f"X holds symbol {int(X.max())} but the model knows "
                             f"{n_symbols} symbols (0..{n_symbols - 1}).")
        if reset:
            self.n_symbols_ = int(self.n_features or X.max() + 1)
            if X.max() >= self.n_symbols_:
                raise ValueError(f"X holds symbol {int(X.max())} but n_features="
                                 f"{self.n_features}; raise n_features or leave it None.")
        return X

    def _check_data(self, data) -> None:
        if data.path is not None and self.n_features is None and not hasattr(self, "n_symbols_"):
            raise ValueError("CategoricalHMM reading a .npy file needs n_features (the number "
                             "of symbols), since the file is not scanned in advance.")
        if data.path is not None and self.n_features is not None:
            self.n_symbols_ = int(self.n_features)

    def _init_emissions(self, X, random_state) -> None:
        K, S = self.n_components, self.n_symbols_
        if "e" in self.init_params or not hasattr(self, "emissionprob_"):
            # hmmlearn's start: uniform random rows, normalised
            B = random_state.rand(K, S)
            self.emissionprob_ = B / B.sum(1, keepdims=True)
        self.emissionprob_ = np.asarray(self.emissionprob_, dtype=np.float64)
        if self.emissionprob_.shape != (K, S):
            raise ValueError(f"emissionprob_ must have shape {(K, S)}, got "
                             f"{self.emissionprob_.shape}.")

    def _emission_constants(self) -> dict:
        with np.errstate(divide="ignore"):
            return {"log_B": self._to_torch(np.log(self.emissionprob_))}  # (K, S)

    def _log_emission(self, X, mask, c):
        """(B, T, K) ``ln B_{k, x_t}``."""
        return c["log_B"].T[X[..., 0].long()]

    def _emission_stats(self, X, mask, gamma, c) -> dict:
        """Expected symbol counts per state (K, S): ``sum_t gamma(z_tk) [x_t = s]``."""
        onehot = torch.nn.functional.one_hot(X[..., 0].long(), self.n_symbols_).to(gamma)
        return {"obs": torch.einsum("btk,bts->ks", gamma, onehot)}

    def _m_step_emissions(self, stats, visited) -> None:
        if "e" in self.params:
            # B_ks proportional to max(alpha_ks - 1 + E[count_ks], 0)  (PRML 13.23, Dirichlet MAP)
            B = np.maximum(np.asarray(self.emissionprob_prior) - 1 + stats["obs"], 0)
            rows = B.sum(1, keepdims=True)
            fresh = visited[:, None] & (rows > 0)
            self.emissionprob_ = np.where(fresh, B / np.where(rows > 0, rows, 1),
                                          self.emissionprob_)

    def _sample_emission(self, states, generator):
        probs = self._to_torch(self.emissionprob_)[states]  # (n, S)
        return torch.multinomial(probs, 1, generator=generator).to(self._torch_dtype)
