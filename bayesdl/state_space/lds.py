"""The linear dynamical system (linear-Gaussian state-space model; PRML 13.3):

    z_1 ~ N(mu_0, V_0),   z_t = A z_{t-1} + w_t,  w_t ~ N(0, Q),   x_t = C z_t + v_t,  v_t ~ N(0, R)

(PRML 13.75-13.77), with pykalman's parameter names. The Kalman filter (PRML 13.89-13.92)
updates covariances in Joseph form, ``P = (I - K C) P (I - K C)^T + K R K^T``, so they stay
symmetric positive semi-definite; the log-likelihood is the prediction-error decomposition
``sum_t ln N(x_t | C m_{t|t-1}, S_t)``; the Rauch-Tung-Striebel smoother (PRML 13.100-13.102)
gives the posteriors EM needs (PRML 13.110-13.116). All sequences of a chunk are filtered at
once, padded; EM runs on the engine (:mod:`bayesdl.core.em`) over sequences.

Missing observations (NaN entries) are handled exactly: at each step the rows of ``C`` and
the rows and columns of ``R`` of the missing entries are replaced by zeros and an identity
block, which is the Kalman update with the observed entries only. In EM the missing entries
are latent too (their expectations given ``x_o`` and ``z``), which keeps EM monotone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from scipy.stats import norm
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_random_state, validate_data

from .._base import TorchEstimatorMixin, _host
from ..core.em import EMMixin, Sequences, SequenceSource

PARAMETERS = ("transition_matrices", "observation_matrices", "transition_covariance",
              "observation_covariance", "initial_state_mean", "initial_state_covariance")
# pykalman's default: learn the noise and the initial state, keep the matrices as given
DEFAULT_EM_VARS = ("transition_covariance", "observation_covariance", "initial_state_mean",
                   "initial_state_covariance")
LOG_2PI = math.log(2 * math.pi)


def _sym(P: torch.Tensor) -> torch.Tensor:
    return 0.5 * (P + P.mT)


@dataclass
class KalmanResult:
    """Filtered, predicted and (optionally) smoothed moments of a batch of sequences."""

    log_likelihood: torch.Tensor  # (B,)
    filtered_means: torch.Tensor  # (B, T, n)
    filtered_covariances: torch.Tensor  # (B, T, n, n)
    predicted_means: torch.Tensor  # (B, T, n) m_{t|t-1}
    predicted_covariances: torch.Tensor  # (B, T, n, n)
    smoothed_means: torch.Tensor | None = None
    smoothed_covariances: torch.Tensor | None = None
    gains: torch.Tensor | None = None  # (B, T, n, n) smoother gains J_t


def _observed_blocks(observed: torch.Tensor, C: torch.Tensor, R: torch.Tensor):
    """``(C_t, R_t)`` with the missing rows of ``C`` zero and the missing block of ``R`` the
    identity, uncoupled from the observed block: ``observed`` (..., p) -> (..., p, n),
    (..., p, p)."""
    o = observed.to(C.dtype)
    C_t = C * o[..., None]
    eye = torch.eye(R.shape[-1], dtype=R.dtype, device=R.device)
    R_t = R * (o[..., :, None] * o[..., None, :]) + eye * (1 - o)[..., None]
    return C_t, R_t


def kalman(X: torch.Tensor, observed: torch.Tensor, A, C, Q, R, mu0, V0, *,
           smooth: bool) -> KalmanResult:
    """Kalman filter (and RTS smoother) on ``X`` (B, T, p) with ``observed`` (B, T) or
    (B, T, p) marking the entries that count (padded steps: none)."""
    B, T, p = X.shape
    n = A.shape[0]
    if observed.dim() == 2:
        observed = observed[..., None].expand(B, T, p)
    observed = observed & ~torch.isnan(X)
    x = torch.nan_to_num(X)
    eye = torch.eye(n, dtype=X.dtype, device=X.device)
    means = X.new_empty(B, T, n)
    covs = X.new_empty(B, T, n, n)
    pmeans = X.new_empty(B, T, n)
    pcovs = X.new_empty(B, T, n, n)
    log_lik = X.new_zeros(B)
    m_p, P_p = mu0.expand(B, n), V0.expand(B, n, n)
    for t in range(T):
        pmeans[:, t], pcovs[:, t] = m_p, P_p
        C_t, R_t = _observed_blocks(observed[:, t], C, R)  # (B, p, n), (B, p, p)
        # innovation r = x_t - C m_{t|t-1} and its covariance S = C P C^T + R  (PRML 13.91)
        r = x[:, t] * observed[:, t] - (C_t @ m_p[..., None]).squeeze(-1)  # (B, p)
        S = C_t @ P_p @ C_t.mT + R_t  # (B, p, p)
        L = torch.linalg.cholesky(_sym(S))
        # Kalman gain K = P C^T S^-1  (PRML 13.92)
        K = torch.cholesky_solve(C_t @ P_p, L).mT  # (B, n, p)
        m = m_p + (K @ r[..., None]).squeeze(-1)  # (PRML 13.89)
        I_KC = eye - K @ C_t
        # Joseph form of V = (I - K C) P  (PRML 13.90): symmetric PSD by construction
        P = _sym(I_KC @ P_p @ I_KC.mT + K @ R_t @ K.mT)
        # ln N(r | 0, S) over the observed entries (the missing block is N(0 | 0, I) minus its constant)
        white = torch.linalg.solve_triangular(L, r[..., None], upper=False).squeeze(-1)
        log_lik = log_lik - 0.5 * (observed[:, t].sum(-1).to(X.dtype) * LOG_2PI + white.square().sum(-1)
                                   + 2 * torch.log(L.diagonal(dim1=-2, dim2=-1)).sum(-1))
        means[:, t], covs[:, t] = m, P
        # one step ahead: m_{t+1|t} = A m, P_{t+1|t} = A P A^T + Q  (PRML 13.88)
        m_p = m @ A.T
        P_p = _sym(A @ P @ A.T + Q)
    result = KalmanResult(log_lik, means, covs, pmeans, pcovs)
    if not smooth:
        return result
    s_means, s_covs = means.clone(), covs.clone()
    gains = X.new_zeros(B, T, n, n)
    for t in range(T - 2, -1, -1):
        # J_t = V_t A^T P_{t+1}^-1  (PRML 13.102)
        J = torch.cholesky_solve(A @ covs[:, t], torch.linalg.cholesky(pcovs[:, t + 1])).mT
        gains[:, t] = J
        # mu^_t = mu_t + J (mu^_{t+1} - A mu_t)  (PRML 13.100)
        s_means[:, t] = means[:, t] + (J @ (s_means[:, t + 1] - pmeans[:, t + 1])[..., None]
                                       ).squeeze(-1)
        # V^_t = V_t + J (V^_{t+1} - P_{t+1}) J^T  (PRML 13.101)
        s_covs[:, t] = _sym(covs[:, t] + J @ (s_covs[:, t + 1] - pcovs[:, t + 1]) @ J.mT)
    result.smoothed_means, result.smoothed_covariances, result.gains = s_means, s_covs, gains
    return result


@dataclass
class Forecast:
    """Predictive distribution of the next ``steps`` observations, with central bands."""

    mean: np.ndarray  # (steps, p)
    covariance: np.ndarray  # (steps, p, p)
    lower: np.ndarray  # (steps, p)
    upper: np.ndarray  # (steps, p)
    state_mean: np.ndarray  # (steps, n)
    state_covariance: np.ndarray  # (steps, n, n)


class LinearGaussianStateSpace(EMMixin, TorchEstimatorMixin, BaseEstimator):
    """Linear dynamical system with Kalman filtering, RTS smoothing and EM (PRML 13.3).

    Parameters use pykalman's names; each is an initial value (or, when not in ``em_vars``,
    a fixed value). ``None`` gives pykalman's defaults: identity matrices and covariances,
    zero initial mean. ``n_dim_state`` / ``n_dim_obs`` are inferred from the matrices or the
    data when None. ``em_vars`` lists the parameters EM learns (``"all"``: every one). The
    fitted values are the same names with a trailing underscore. ``filter``, ``smooth``,
    ``score`` and ``forecast`` use the fitted values, or the given ones before ``fit``.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing observations are marginalised exactly
        return tags

    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        **{name: ["array-like", Real, None] for name in PARAMETERS},
        "n_dim_state": [Interval(Integral, 1, None, closed="left"), None],
        "n_dim_obs": [Interval(Integral, 1, None, closed="left"), None],
        "em_vars": [StrOptions({"all"}), list, tuple],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, transition_matrices=None, observation_matrices=None,
                 transition_covariance=None, observation_covariance=None,
                 initial_state_mean=None, initial_state_covariance=None, n_dim_state=None,
                 n_dim_obs=None, em_vars=DEFAULT_EM_VARS, n_iter=10, tol=1e-2, n_init=1,
                 warm_start=False, verbose=False, chunk_size=None, random_state=None,
                 device="cpu", dtype="float64"):
        self.transition_matrices = transition_matrices
        self.observation_matrices = observation_matrices
        self.transition_covariance = transition_covariance
        self.observation_covariance = observation_covariance
        self.initial_state_mean = initial_state_mean
        self.initial_state_covariance = initial_state_covariance
        self.n_dim_state = n_dim_state
        self.n_dim_obs = n_dim_obs
        self.em_vars = em_vars
        self.n_iter = n_iter
        self.tol = tol
        self.n_init = n_init
        self.warm_start = warm_start
        self.verbose = verbose
        self.chunk_size = chunk_size
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    @property
    def max_iter(self) -> int:
        return self.n_iter

    # -- parameters -------------------------------------------------------------------------
    def _given(self, p: int) -> dict:
        """The constructor's parameters as float64 arrays, defaults filled in."""
        A = self.transition_matrices
        C = self.observation_matrices
        n = self.n_dim_state or (np.atleast_2d(A).shape[0] if A is not None else
                                 np.atleast_2d(C).shape[1] if C is not None else
                                 np.size(self.initial_state_mean) if
                                 self.initial_state_mean is not None else 1)
        defaults = {"transition_matrices": np.eye(n), "observation_matrices": np.eye(p, n),
                    "transition_covariance": np.eye(n), "observation_covariance": np.eye(p),
                    "initial_state_mean": np.zeros(n), "initial_state_covariance": np.eye(n)}
        shapes = {"transition_matrices": (n, n), "observation_matrices": (p, n),
                  "transition_covariance": (n, n), "observation_covariance": (p, p),
                  "initial_state_mean": (n,), "initial_state_covariance": (n, n)}
        out = {}
        for name in PARAMETERS:
            value = getattr(self, name)
            value = defaults[name] if value is None else np.asarray(value, dtype=np.float64)
            value = value.reshape(shapes[name]) if value.size == np.prod(shapes[name]) else value
            if value.shape != shapes[name]:
                raise ValueError(f"{name} must have shape {shapes[name]} (n_dim_state={n}, "
                                 f"n_dim_obs={p}), got {value.shape}.")
            out[name] = value
        return out

    def _current(self, p: int) -> dict:
        if hasattr(self, "transition_matrices_"):
            return {name: getattr(self, name + "_") for name in PARAMETERS}
        return self._given(p)

    def _tensors(self, params: dict) -> list[torch.Tensor]:
        return [self._to_torch(params[name]) for name in PARAMETERS]

    def _learned(self) -> tuple[str, ...]:
        return PARAMETERS if self.em_vars == "all" else tuple(self.em_vars)

    # -- data -------------------------------------------------------------------------------
    def _source(self, X, lengths, *, reset: bool) -> SequenceSource:
        if not isinstance(X, (str, bytes)) and not hasattr(X, "__fspath__"):
            X = validate_data(self, _host(X), reset=reset, dtype=self._numpy_dtype,
                              ensure_all_finite="allow-nan")
        data = SequenceSource(X, lengths, dtype=self._torch_dtype, device=self._torch_device,
                              chunk_size=self.chunk_size, allow_nan=True)
        if reset:
            self.n_features_in_ = data.n_features
        unknown = set(self._learned()) - set(PARAMETERS)
        if unknown:
            raise ValueError(f"em_vars has unknown names {sorted(unknown)}; choose from "
                             f"{list(PARAMETERS)} or 'all'.")
        return data

    def _as_sequence(self, X) -> np.ndarray:
        """One sequence as (T, p); a 1-D series is one observed dimension."""
        X = np.asarray(_host(X), dtype=self._numpy_dtype)
        X = X[:, None] if X.ndim == 1 else X
        if X.ndim != 2 or X.shape[0] == 0 or np.isinf(X).any():
            raise ValueError(f"X must be a (n_timesteps, n_dim_obs) array without infinities "
                             f"(NaN marks a missing entry); got shape {X.shape}.")
        return X

    def _kalman(self, X, *, smooth: bool) -> KalmanResult:
        X = self._as_sequence(X)
        params = self._current(X.shape[1])
        Xt = self._to_torch(X)[None]  # (1, T, p)
        mask = torch.ones(Xt.shape[:2], dtype=torch.bool, device=Xt.device)
        return kalman(Xt, mask, *self._tensors(params), smooth=smooth)

    # -- the engine hooks -------------------------------------------------------------------
    def fit(self, X, lengths=None):
        """EM (PRML 13.3.2) for the parameters in ``em_vars`` over the sequences of ``X``
        ((N, p) array or ``.npy`` path; ``lengths`` as hmmlearn). Returns ``self``."""
        self._validate_params()
        data = self._source(X, lengths, reset=True)
        self._fit_em(data)
        return self

    def _initialize(self, data, random_state) -> None:
        for name, value in self._given(data.n_features).items():
            setattr(self, name + "_", value)
        self._prepare()

    def _get_parameters(self):
        return tuple(np.array(getattr(self, name + "_")) for name in PARAMETERS)

    def _set_parameters(self, params) -> None:
        for name, value in zip(PARAMETERS, params):
            setattr(self, name + "_", np.asarray(_host(value), dtype=np.float64))
        self._prepare()

    def _prepare(self) -> None:
        self._theta = self._tensors({n: getattr(self, n + "_") for n in PARAMETERS})

    def _compute_lower_bound(self, stats, log_lik_sum, n_samples) -> float:
        return float(log_lik_sum)  # the total log-likelihood, as for the HMMs

    def _e_step_stats(self, seq: Sequences):
        """Kalman smoother on a chunk of sequences, then the expected sufficient statistics
        of PRML 13.110-13.116 summed over its sequences and steps."""
        A, C, Q, R, mu0, V0 = self._theta
        mask = seq.mask  # (B, T)
        res = kalman(seq.X, mask, A, C, Q, R, mu0, V0, smooth=True)
        m, P = res.smoothed_means, res.smoothed_covariances  # (B, T, n), (B, T, n, n)
        w = mask.to(m.dtype)  # (B, T)
        # E[z_t z_t^T] = V^_t + mu^_t mu^_t^T  (PRML 13.107)
        Ezz = P + m[..., :, None] * m[..., None, :]  # (B, T, n, n)
        # E[z_t z_{t-1}^T] = V^_t J_{t-1}^T + mu^_t mu^_{t-1}^T  (PRML 13.106)
        cross = P[:, 1:] @ res.gains[:, :-1].mT + m[:, 1:, :, None] * m[:, :-1, None, :]
        wt = w[:, 1:, None, None]  # transitions t-1 -> t inside the sequence
        Sxz, Sxx = self._observation_moments(seq.X, mask, m, Ezz, C, R)
        stats = {
            "n_seq": w.new_tensor(float(seq.X.shape[0])),
            "z1": m[:, 0].sum(0), "z1z1": Ezz[:, 0].sum(0),
            "S00": (Ezz[:, :-1] * wt).sum((0, 1)), "S10": (cross * wt).sum((0, 1)),
            "S11": (Ezz[:, 1:] * wt).sum((0, 1)), "n_trans": wt.sum(),
            "Szz": (Ezz * w[..., None, None]).sum((0, 1)), "Sxz": Sxz, "Sxx": Sxx,
            "n_steps": w.sum(),
        }
        return stats, res.log_likelihood.sum()

    def _observation_moments(self, X, mask, m, Ezz, C, R):
        """``(sum_t E[x_t z_t^T], sum_t E[x_t x_t^T])`` over the real steps. A missing entry
        is latent: x = M z + b + e with, for the missing block, M = C_m - G C_o,
        b = G x_o, cov(e) = R_mm - G R_om and G = R_mo R_oo^-1 (PRML 2.81-2.82)."""
        observed = ~torch.isnan(X) & mask[..., None]  # (B, T, p)
        o = observed.to(X.dtype)
        x = torch.nan_to_num(X) * o
        C_t, R_t = _observed_blocks(observed, C, R)  # (B, T, p, n), (B, T, p, p)
        miss = (1 - o) * mask[..., None].to(X.dtype)  # (B, T, p) missing real entries
        # G = R_mo R_oo^-1: R restricted to (missing rows, observed columns) times R_t^-1
        G = torch.linalg.solve(R_t, (R * (miss[..., :, None] * o[..., None, :])).mT).mT
        M = miss[..., None] * C - G @ C_t  # (B, T, p, n)
        b = x + (G @ x[..., None]).squeeze(-1)  # (B, T, p)
        cov_e = (R - G @ R) * (miss[..., :, None] * miss[..., None, :])  # (B, T, p, p)
        Mm = (M @ m[..., None]).squeeze(-1)  # (B, T, p)
        w = mask.to(X.dtype)[..., None, None]
        # E[x z^T] = M E[z z^T] + b mu^T
        Exz = M @ Ezz + b[..., :, None] * m[..., None, :]
        # E[x x^T] = M E[zz^T] M^T + M mu b^T + b mu^T M^T + b b^T + cov(e)
        Exx = (M @ Ezz @ M.mT + Mm[..., :, None] * b[..., None, :]
               + b[..., :, None] * Mm[..., None, :] + b[..., :, None] * b[..., None, :] + cov_e)
        return (Exz * w).sum((0, 1)), (Exx * w).sum((0, 1))

    def _m_step(self, stats) -> None:
        """PRML 13.110-13.116 for the parameters in ``em_vars`` (summed over sequences)."""
        s = {k: v.double() for k, v in stats.items()}
        learn = self._learned()
        f64 = lambda a: torch.as_tensor(a, dtype=torch.float64, device=s["z1"].device)  # noqa: E731
        A, C = f64(self.transition_matrices_), f64(self.observation_matrices_)
        mu0 = f64(self.initial_state_mean_)
        if "initial_state_mean" in learn:
            mu0 = s["z1"] / s["n_seq"]  # (PRML 13.110)
            self.initial_state_mean_ = self._to_numpy(mu0)
        if "initial_state_covariance" in learn:
            # V_0 = E[z_1 z_1^T] - mu_0 E[z_1]^T - E[z_1] mu_0^T + mu_0 mu_0^T  (PRML 13.111)
            z1 = s["z1"] / s["n_seq"]
            V0 = (s["z1z1"] / s["n_seq"] - torch.outer(mu0, z1) - torch.outer(z1, mu0)
                  + torch.outer(mu0, mu0))
            self.initial_state_covariance_ = self._to_numpy(_sym(V0))
        if "transition_matrices" in learn and s["n_trans"] > 0:
            # A = (sum E[z_t z_{t-1}^T]) (sum E[z_{t-1} z_{t-1}^T])^-1  (PRML 13.113)
            A = torch.linalg.solve(s["S00"], s["S10"].T).T
            self.transition_matrices_ = self._to_numpy(A)
        if "transition_covariance" in learn and s["n_trans"] > 0:
            # Q = (S11 - A S10^T - S10 A^T + A S00 A^T) / (number of transitions)  (PRML 13.114)
            Q = (s["S11"] - A @ s["S10"].T - s["S10"] @ A.T + A @ s["S00"] @ A.T) / s["n_trans"]
            self.transition_covariance_ = self._to_numpy(_sym(Q))
        if "observation_matrices" in learn:
            # C = (sum E[x_t z_t^T]) (sum E[z_t z_t^T])^-1  (PRML 13.115)
            C = torch.linalg.solve(s["Szz"], s["Sxz"].T).T
            self.observation_matrices_ = self._to_numpy(C)
        if "observation_covariance" in learn:
            # R = (Sxx - C Sxz^T - Sxz C^T + C Szz C^T) / N  (PRML 13.116)
            R = (s["Sxx"] - C @ s["Sxz"].T - s["Sxz"] @ C.T + C @ s["Szz"] @ C.T) / s["n_steps"]
            self.observation_covariance_ = self._to_numpy(_sym(R))
        self._prepare()

    # -- inference --------------------------------------------------------------------------
    def filter(self, X):
        """Kalman filter of one sequence X (T, p): ``(means (T, n), covariances (T, n, n))``
        of ``p(z_t | x_1..x_t)`` (PRML 13.89-13.90)."""
        res = self._kalman(X, smooth=False)
        return self._to_numpy(res.filtered_means[0]), self._to_numpy(res.filtered_covariances[0])

    def smooth(self, X):
        """RTS smoother of one sequence: ``(means (T, n), covariances (T, n, n))`` of
        ``p(z_t | x_1..x_T)`` (PRML 13.100-13.101)."""
        res = self._kalman(X, smooth=True)
        return self._to_numpy(res.smoothed_means[0]), self._to_numpy(res.smoothed_covariances[0])

    def loglikelihood(self, X) -> float:
        """pykalman's name for :meth:`score` of one sequence."""
        return float(self._kalman(X, smooth=False).log_likelihood[0])

    def score(self, X, lengths=None) -> float:
        """The log-likelihood ``sum_b ln p(X_b)`` by the prediction-error decomposition."""
        X = self._as_sequence(X)
        params = self._current(X.shape[1])
        data = SequenceSource(X, lengths, dtype=self._torch_dtype, device=self._torch_device,
                              chunk_size=self.chunk_size, allow_nan=True)
        theta = self._tensors(params)
        return float(sum(kalman(s.X, s.mask, *theta, smooth=False).log_likelihood.sum()
                         for s in data))

    def forecast(self, X, steps: int, level: float = 0.95) -> Forecast:
        """The next ``steps`` observations after the sequence ``X``: predictive means,
        covariances ``C P C^T + R`` and central ``level`` bands (marginal, per entry)."""
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}.")
        res = self._kalman(X, smooth=False)
        A, C, Q, R, _, _ = self._tensors(self._current(self._as_sequence(X).shape[1]))
        m, P = res.filtered_means[0, -1], res.filtered_covariances[0, -1]
        out = {k: [] for k in ("mean", "cov", "zm", "zP")}
        for _ in range(steps):
            m, P = A @ m, _sym(A @ P @ A.T + Q)  # (PRML 13.88)
            out["zm"].append(m)
            out["zP"].append(P)
            out["mean"].append(C @ m)
            out["cov"].append(_sym(C @ P @ C.T + R))
        mean = self._to_numpy(torch.stack(out["mean"]))
        cov = self._to_numpy(torch.stack(out["cov"]))
        half = norm.ppf(0.5 + level / 2) * np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
        return Forecast(mean, cov, mean - half, mean + half,
                        self._to_numpy(torch.stack(out["zm"])),
                        self._to_numpy(torch.stack(out["zP"])))

    def sample(self, n_timesteps: int, random_state=None):
        """Draw one sequence: ``(states (T, n), observations (T, p))`` (PRML 13.75-13.77)."""
        if n_timesteps < 1:
            raise ValueError(f"n_timesteps must be at least 1, got {n_timesteps}.")
        p = self.n_dim_obs or getattr(self, "n_features_in_", None) or (
            np.atleast_2d(self.observation_matrices).shape[0]
            if self.observation_matrices is not None else 1)
        A, C, Q, R, mu0, V0 = (np.asarray(v) for v in self._current(p).values())
        rng = check_random_state(self.random_state if random_state is None else random_state)
        n = A.shape[0]
        z = np.empty((n_timesteps, n))
        z[0] = rng.multivariate_normal(mu0, V0)
        for t in range(1, n_timesteps):
            z[t] = A @ z[t - 1] + rng.multivariate_normal(np.zeros(n), Q)
        x = z @ C.T + rng.multivariate_normal(np.zeros(C.shape[0]), R, size=n_timesteps)
        return z, x
