"""What every hidden Markov model shares: the Markov chain, Baum-Welch on the EM engine,
decoding, scoring and sampling (PRML 13.2; hmmlearn's API).

An emission family (one module each) subclasses :class:`BaseHMM` and supplies

- ``_emission_letters``: its ``params`` / ``init_params`` letters (``"mc"`` for Gaussians);
- ``_init_emissions(X, random_state)`` from up to ``INIT_MAX_ROWS`` rows of the data;
- ``_emission_constants()`` -> tensors the E-step needs (precomputed once per M-step);
- ``_log_emission(X, mask, constants)`` -> (B, T, K) ``log p(x_t | z_t = k)``;
- ``_emission_stats(X, mask, gamma, constants)`` -> dict of summed statistics;
- ``_m_step_emissions(stats, visited)`` and ``_emission_parameters`` (attribute names);
- ``_sample_emission(state, generator)`` -> one observation row per state in ``state``.

The Baum-Welch statistics (expected initial states, expected transitions, emission
statistics) are the engine's sufficient statistics (:mod:`bayesdl.core.em`); sequences are
the unit of its chunks (:class:`~bayesdl.core.em.SequenceSource`), so many sequences stream
from a ``.npy`` file and are all-reduced under ``torch.distributed``.
"""

from __future__ import annotations

import os
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from .._base import TorchEstimatorMixin, _host
from ..core.em import EMMixin, SequenceSource
from . import forward_backward as fb

# Rows used to initialise the emissions when the data are larger (a uniform subset).
INIT_MAX_ROWS = 100_000
# Values (timesteps x features) per chunk of whole sequences.
SEQUENCE_CHUNK_ELEMENTS = 2**18


class UnvisitedStateWarning(UserWarning):
    """A state received no posterior mass in an E-step; its parameters were repaired."""


class BaseHMM(EMMixin, TorchEstimatorMixin, BaseEstimator):
    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "startprob_prior": [Interval(Real, 0, None, closed="neither"), "array-like"],
        "transmat_prior": [Interval(Real, 0, None, closed="neither"), "array-like"],
        "algorithm": [StrOptions({"viterbi", "map"})],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "verbose": ["verbose"],
        "params": [str],
        "init_params": [str],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    }
    _emission_letters = ""
    _emission_parameters: tuple[str, ...] = ()
    _allow_nan = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._allow_nan
        return tags

    # hmmlearn calls the iteration limit n_iter; the engine reads max_iter.
    @property
    def max_iter(self) -> int:
        return self.n_iter

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, lengths=None):
        """Baum-Welch (EM, PRML 13.2.1) on the sequences of ``X``: an (N, d) array or a path
        to a ``.npy`` file, cut into consecutive sequences by ``lengths`` (as hmmlearn; None:
        one sequence). Parameters whose letter is not in ``init_params`` keep the values set
        on the model before ``fit``. Returns ``self``."""
        self._validate_params()
        letters = "st" + self._emission_letters
        for name in ("params", "init_params"):
            unknown = set(getattr(self, name)) - set(letters)
            if unknown:
                raise ValueError(f"{name}={getattr(self, name)!r} has unknown letters "
                                 f"{sorted(unknown)}; {type(self).__name__} knows {letters!r}.")
        data = self._sequence_source(X, lengths, reset=True)
        self._fit_em(data)
        self._prepare()
        return self

    def _sequence_source(self, X, lengths, *, reset: bool) -> SequenceSource:
        if not isinstance(X, (str, os.PathLike)):
            X = self._check_X(X, reset=reset)
        source = SequenceSource(X, lengths, dtype=self._torch_dtype, device=self._torch_device,
                                chunk_size=self.chunk_size,
                                chunk_elements=SEQUENCE_CHUNK_ELEMENTS, allow_nan=self._allow_nan)
        if reset:
            self.n_features_in_ = source.n_features
        elif source.n_features != self.n_features_in_:
            raise ValueError(f"X has {source.n_features} features, but {type(self).__name__} "
                             f"is expecting {self.n_features_in_} features as input.")
        self._check_data(source)
        return source

    def _check_X(self, X, *, reset: bool) -> np.ndarray:
        """Validate an in-memory ``X`` (N, d); families with NaN support let NaN through."""
        return validate_data(self, _host(X), reset=reset, dtype=self._numpy_dtype,
                             ensure_all_finite="allow-nan" if self._allow_nan else True)

    def _check_data(self, data: SequenceSource) -> None:
        """Hook: family-specific checks of the data (symbols, counts)."""

    def _initialize(self, data: SequenceSource, random_state) -> None:
        K = self.n_components
        if "s" in self.init_params or not hasattr(self, "startprob_"):
            self.startprob_ = np.full(K, 1.0 / K)
        if "t" in self.init_params or not hasattr(self, "transmat_"):
            self.transmat_ = np.full((K, K), 1.0 / K)
        rows = self._to_numpy(data.head(INIT_MAX_ROWS, random_state)).astype(np.float64)
        self._init_emissions(rows, random_state)
        self._check_parameters()

    def _check_parameters(self) -> None:
        K = self.n_components
        for name, shape in (("startprob_", (K,)), ("transmat_", (K, K))):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {value.shape}.")
            if not np.allclose(value.sum(-1), 1.0) or (value < 0).any():
                raise ValueError(f"{name} must hold probabilities summing to 1 (per row).")
            setattr(self, name, value)

    def _get_parameters(self):
        names = ("startprob_", "transmat_") + self._emission_parameters
        return tuple(np.array(getattr(self, n), dtype=np.float64) for n in names)

    def _set_parameters(self, params) -> None:
        names = ("startprob_", "transmat_") + self._emission_parameters
        for name, value in zip(names, params):
            setattr(self, name, np.asarray(_host(value), dtype=np.float64))
        self._prepare()

    def _prepare(self) -> None:
        """Precompute the E-step's tensors from the current parameters."""
        with np.errstate(divide="ignore"):
            self._log_startprob = self._to_torch(np.log(self.startprob_))
            self._log_transmat = self._to_torch(np.log(self.transmat_))
        self._startprob = self._to_torch(self.startprob_)
        self._transmat = self._to_torch(self.transmat_)
        self._constants = self._emission_constants()

    def _compute_lower_bound(self, stats, log_lik_sum, n_samples) -> float:
        # hmmlearn's monitor: the total log-likelihood of all sequences, tol on its change.
        return float(log_lik_sum)

    def _e_step_stats(self, seq):
        """Forward-backward on a chunk of sequences (PRML 13.2.2), then its Baum-Welch
        statistics: expected initial states, transitions and emission statistics."""
        mask = seq.mask  # (B, T)
        log_b = self._log_emission(seq.X, mask, self._constants)  # (B, T, K)
        post = fb.forward_backward(log_b, mask, self._startprob, self._transmat)
        stats = {"start": post.gamma[:, 0].sum(0), "trans": post.xi_sum,
                 "post": post.gamma.sum((0, 1))}
        stats.update(self._emission_stats(seq.X, mask, post.gamma, self._constants))
        return stats, post.log_likelihood.sum()

    def _m_step(self, stats) -> None:
        """Dirichlet-MAP updates of the chain (PRML 13.18, 13.19 with hmmlearn's priors),
        then the emissions; states with no posterior mass are repaired, never NaN."""
        stats = {k: self._to_numpy(v) for k, v in stats.items()}
        visited = stats["post"] > 1e-10 * max(stats["post"].sum(), 1.0)
        if not visited.all():
            warnings.warn(
                f"{type(self).__name__}: state(s) {np.flatnonzero(~visited).tolist()} received "
                "no posterior mass; they keep their previous emission parameters and "
                "transition rows. Use fewer states or a transmat_prior > 1.",
                UnvisitedStateWarning, stacklevel=2)
        if "s" in self.params:
            # pi_k proportional to max(alpha_k - 1 + E[z_1k], 0)  (PRML 13.18 with a Dirichlet prior)
            start = np.maximum(np.asarray(self.startprob_prior) - 1 + stats["start"], 0)
            start = np.where(self.startprob_ == 0, 0, start)
            if start.sum() > 0:
                self.startprob_ = start / start.sum()
        if "t" in self.params:
            # A_jk proportional to max(alpha_jk - 1 + sum_t E[z_{t-1,j} z_tk], 0)  (PRML 13.19)
            trans = np.maximum(np.asarray(self.transmat_prior) - 1 + stats["trans"], 0)
            trans = np.where(self.transmat_ == 0, 0, trans)
            rows = trans.sum(1, keepdims=True)
            self.transmat_ = np.where(rows > 0, trans / np.where(rows > 0, rows, 1),
                                      self.transmat_)
        self._m_step_emissions(stats, visited)
        self._prepare()

    # -- inference --------------------------------------------------------------------------
    def _chunks(self, X, lengths):
        check_is_fitted(self)
        self._prepare()
        return self._sequence_source(X, lengths, reset=False)

    def _posteriors(self, X, lengths):
        """``(log p(X), gamma (N, K))`` over all sequences of ``X``."""
        total, gammas = 0.0, []
        for seq in self._chunks(X, lengths):
            mask = seq.mask
            log_b = self._log_emission(seq.X, mask, self._constants)
            post = fb.forward_backward(log_b, mask, self._startprob, self._transmat)
            total += float(post.log_likelihood.sum())
            gammas.append(post.gamma[mask])
        return total, torch.cat(gammas)

    def score_samples(self, X, lengths=None):
        """``(log p(X), posteriors (N, K))``: the log-likelihood of all sequences and the
        state posteriors ``gamma(z_t)`` (PRML 13.33) at each row, as hmmlearn returns."""
        total, gamma = self._posteriors(X, lengths)
        return total, self._to_numpy(gamma)

    def score(self, X, lengths=None) -> float:
        """The log-likelihood ``sum_b log p(X_b)`` of the sequences (PRML 13.42)."""
        return self._posteriors(X, lengths)[0]

    def predict_proba(self, X, lengths=None) -> np.ndarray:
        """The state posteriors ``p(z_t = k | X)`` of each row, (N, K)."""
        return self.score_samples(X, lengths)[1]

    def predict_dist(self, X, lengths=None) -> torch.distributions.Categorical:
        """The posterior over the state of each row, ``p(z_t | X)``, as a Categorical (N,)."""
        gamma = self._posteriors(X, lengths)[1]
        return torch.distributions.Categorical(probs=gamma / gamma.sum(-1, keepdim=True))

    def decode(self, X, lengths=None, algorithm=None):
        """``(log_prob, states (N,))``: ``viterbi`` gives the jointly most probable path and
        its ``log p(X, Z*)`` (PRML 13.68); ``map`` the most probable state at each step and,
        as hmmlearn, the sum over steps of the log of its posterior."""
        algorithm = algorithm or self.algorithm
        if algorithm not in ("viterbi", "map"):
            raise ValueError(f"algorithm must be 'viterbi' or 'map', got {algorithm!r}.")
        if algorithm == "map":
            _, gamma = self._posteriors(X, lengths)
            best, states = gamma.max(-1)
            return float(torch.log(best).sum()), self._to_numpy(states)
        total, paths = 0.0, []
        for seq in self._chunks(X, lengths):
            mask = seq.mask
            log_b = self._log_emission(seq.X, mask, self._constants)
            log_prob, path = fb.viterbi(log_b, mask, self._log_startprob, self._log_transmat)
            total += float(log_prob.sum())
            paths.append(path[mask])
        return total, self._to_numpy(torch.cat(paths))

    def predict(self, X, lengths=None) -> np.ndarray:
        """The decoded state of each row (``algorithm``: Viterbi by default), (N,)."""
        return self.decode(X, lengths)[1]

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Draw one sequence of ``n_samples`` steps from the model: ``(X (n, d), states (n,))``
        (ancestral sampling, PRML 13.2: z_1 ~ pi, z_t ~ A[z_{t-1}], x_t ~ p(x | z_t))."""
        check_is_fitted(self)
        self._prepare()
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}.")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        states = np.empty(n_samples, dtype=np.int64)
        states[0] = rng.choice(self.n_components, p=self.startprob_) if currstate is None \
            else currstate
        cumulative = np.cumsum(self.transmat_, axis=1)
        for t in range(1, n_samples):
            u = rng.rand()
            states[t] = min(np.searchsorted(cumulative[states[t - 1]], u, side="right"),
                            self.n_components - 1)
        X = self._sample_emission(torch.as_tensor(states, device=self._torch_device),
                                  self._torch_generator(rng))
        return self._to_numpy(X), states
