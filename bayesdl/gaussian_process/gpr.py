"""Exact Gaussian process regression (Rasmussen & Williams 2006, chapter 2 and 5; PRML 6.4.2).

Model: f ~ GP(0, k_theta), y_n = f(x_n) + eps_n with eps_n ~ N(0, alpha_n) (``alpha``, and/or a
``WhiteKernel`` inside the kernel). With K = k(X, X) + diag(alpha) = L L^T:

- dual coefficients  a = K^-1 y                               (R&W Algorithm 2.1, line 3)
- predictive mean    m(x*) = k(x*, X) a                        (R&W 2.25, PRML 6.66)
- predictive cov     k(x*, x*) - v^T v,  v = L^-1 k(X, x*)     (R&W 2.26, PRML 6.67)
- log evidence       -1/2 y^T a - sum_i log L_ii - n/2 log 2pi (R&W 2.30 / 5.8)

The hyper-parameters theta (log values of the kernel's free parameters) maximise the log
evidence, plus the log prior of any hyper-parameter carrying one. All starts (the kernel's own
theta and ``n_restarts_optimizer`` draws, uniform in the log bounds as scikit-learn draws them)
are optimised as ONE batch: the kernel is evaluated at a (R, n_dims) theta, the R Gram matrices
are factorised by one batched Cholesky and R L-BFGS-B runs step in lockstep, each with its own
history and stopping rule. From n = 2,000 rows the starts are first screened on a 500-row
subsample (:func:`screen_restarts`, 1/64 of the cost per evaluation or less): a start whose
subsample optimum repeats another's, or predicts the subsample significantly worse in
leave-one-out, is not run on all the data; the kept ones run from their own starts, so each
takes exactly the steps it would take unscreened. The gradient
with respect to theta comes from torch autograd through the kernel, fed by the closed-form
derivative of the evidence with respect to K, dL/dK = 1/2 (a a^T - K^-1) (R&W 5.9), so one
Cholesky and one triangle of K^-1 (LAPACK ``potri``) per step is all the O(n^3) work.
"""

from __future__ import annotations

import copy
import math
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import torch
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from .._base import TorchEstimatorMixin, _host
from ..core.linalg import cholesky_inverse_tril, jittered_cholesky
from ..core.threads import blas_threads, torch_threads
from .kernels import RBF, ConstantKernel, Kernel

# predict_dist returns a full MultivariateNormal up to this many test points, Normals beyond.
FULL_COVARIANCE_MAX_POINTS = 2048
# Below this many training points the fit runs on one torch thread.
SINGLE_THREAD_MAX_SAMPLES = 1000
# The restarts evaluated together hold at most this many bytes of (n, n) matrices each (K, its
# factor, K^-1 and the kernel's intermediates); n = 10,000 in float64 then goes one at a time.
BATCH_GRAM_BYTES = 2**30
# Restart screening (``screen_subsample="auto"``): every start is first optimised on a random
# subsample of SCREEN_ROWS rows when n >= SCREEN_MIN_SAMPLES. Screening 4 starts took ~180
# evaluations of 500 rows (~3 s on one thread, quiet host); from n = 2,000 that is ~3% of an
# unscreened fit (90 s at n = 2,000) even when no start is dropped, against ~35-50 full-size
# evaluations saved per start dropped. At n = 1,000 it would be ~35% of the 8 s fit.
SCREEN_ROWS = 500
SCREEN_MIN_SAMPLES = 2000
# A start is dropped when the summed leave-one-out log predictive density of its subsample
# optimum is more than SCREEN_Z standard errors below the best optimum's (paired, per row) ...
SCREEN_Z = 4.0
# ... or when its subsample optimum is that of an earlier start (every log hyper-parameter
# within SCREEN_SAME_OPTIMUM, i.e. about 1% in the hyper-parameter itself).
SCREEN_SAME_OPTIMUM = 1e-2
_LOG_2PI = math.log(2 * math.pi)


class JitterWarning(UserWarning):
    """A jitter was added to the diagonal of K to make its Cholesky factorisation succeed."""


def cholesky_with_jitter(K: torch.Tensor, *, strict: bool = True):
    """Lower Cholesky factor of each (..., n, n) ``K``, adding a jitter only where it fails.

    The jitter is 1e-8 in float64 (1e-6 in float32), multiplied by 10 up to 3 tries. With
    ``strict`` a jitter raises a :class:`JitterWarning` and a matrix that still fails raises a
    ``ValueError`` saying what to change; without it (inside the optimiser) failures are
    returned as a boolean mask (..., ) and their factor is the identity.
    """
    L, info = torch.linalg.cholesky_ex(K)
    failed = info != 0  # (...,)
    if not failed.any():
        return L, failed
    # Find each failing matrix's jitter without autograd, then factorise once more with it, so
    # the failed factors (which may hold NaN) never enter the graph: where() would send their
    # 0 * NaN gradients back to K.
    eye = torch.eye(K.shape[-1], dtype=K.dtype, device=K.device)
    added = torch.zeros(failed.shape, dtype=K.dtype, device=K.device)  # (...,)
    jitter = 1e-8 if K.dtype == torch.float64 else 1e-6
    with torch.no_grad():
        for _ in range(3):
            if not failed.any():
                break
            info = torch.linalg.cholesky_ex(K + jitter * eye)[1]
            fixed = failed & (info == 0)
            added = torch.where(fixed, jitter, added)
            if strict and fixed.any():
                warnings.warn(
                    f"K(X, X) + alpha I is not positive definite; added a jitter of {jitter:.0e} "
                    "to its diagonal. Increase alpha or add a WhiteKernel if the data are noisy, "
                    "or remove duplicate inputs.", JitterWarning, stacklevel=3)
            failed = failed & ~fixed
            jitter *= 10
    if failed.any() and strict:
        raise ValueError(
            f"K(X, X) + alpha I is not positive definite even with a jitter of "
            f"{jitter / 10:.0e} on its diagonal (duplicate or near-duplicate inputs with "
            "no noise, or a kernel scale far larger than the jitter). Increase alpha, add a "
            "WhiteKernel, or remove duplicate rows of X.")
    K = torch.where(failed[..., None, None], eye, K + added[..., None, None] * eye)
    return torch.linalg.cholesky_ex(K)[0], failed


class _GaussianLogEvidence(torch.autograd.Function):
    """log N(y | 0, K) for K (..., n, n) and y (n, T), summed over the T outputs: (...,).

    Backward: dlog N / dK = 1/2 (a a^T - T K^-1), a = K^-1 y (R&W 5.9). The K^-1 part is given
    as 2 tril(K^-1) - diag(K^-1), which has the same inner product with every symmetric dK
    (all that a kernel produces) and needs only the triangle LAPACK's potri computes, with no
    (n, n) pass to mirror it. Matrices whose Cholesky fails even with jitter give -inf and a
    zero gradient.
    """

    @staticmethod
    def forward(ctx, K, y, strict):
        L, failed = cholesky_with_jitter(K, strict=strict)  # (..., n, n), (...,)
        a = torch.cholesky_solve(y.expand(*K.shape[:-2], *y.shape), L)  # (..., n, T)
        n, T = y.shape
        # R&W 2.30: -1/2 y^T K^-1 y - 1/2 log|K| - n/2 log 2pi, per output, summed
        log_ev = (-0.5 * (y * a).sum((-2, -1)) - T * torch.log(L.diagonal(dim1=-2, dim2=-1)).sum(-1)
                  - 0.5 * n * T * _LOG_2PI)
        log_ev = log_ev.masked_fill(failed, -math.inf)
        ctx.save_for_backward(L, a, failed)
        return log_ev

    @staticmethod
    def backward(ctx, grad):
        L, a, failed = ctx.saved_tensors
        T = a.shape[-1]
        inv_tril = cholesky_inverse_tril(L)  # (..., n, n): tril(K^-1)
        diag = inv_tril.diagonal(dim1=-2, dim2=-1).clone()  # (..., n)
        # R&W 5.9: 1/2 a a^T - T/2 K^-1 ~ 1/2 a a^T - T tril(K^-1) + T/2 diag(K^-1), one pass
        dK = torch.baddbmm(inv_tril.reshape(-1, *L.shape[-2:]), a.reshape(-1, *a.shape[-2:]),
                           a.reshape(-1, *a.shape[-2:]).mT, beta=-T, alpha=0.5).view(L.shape)
        dK.diagonal(dim1=-2, dim2=-1).add_(0.5 * T * diag)
        # scale by the incoming gradient (0 where the factorisation failed), in place
        dK.mul_(torch.where(failed, 0.0, grad)[..., None, None])
        return dK, None, None


def batched_lbfgsb(loss_and_grad, starts: np.ndarray, bounds: np.ndarray, options=None):
    """Run one scipy L-BFGS-B per start in lockstep, evaluating the starts as one batch.

    ``loss_and_grad(index (B,), theta (B, P)) -> (loss (B,), grad (B, P))`` for the starts
    ``index`` (a subset of ``range(R)``). Each start keeps its own
    L-BFGS history, line search and stopping rule (as separate scipy runs would); the runs
    live in threads that hand their next point to a coordinator, and whichever thread brings
    the last point of a round evaluates the whole round at once. A start that stops early
    leaves the batch. A non-finite loss (a failed factorisation) is replaced, with a zero
    gradient, by a value above the run's lowest loss so far: f_min + 1 + |f_min|, so the line
    search backs off by a sane factor (a replacement of 1e25 made scipy's cubic interpolation
    step back to within 1e-24 of the current point and report convergence there, which left
    float32 fits at their start); 1e25 when the run has no finite loss yet. Returns the R
    ``scipy.optimize.OptimizeResult`` objects.
    """
    R = starts.shape[0]
    lock = threading.Condition()
    pending: dict[int, np.ndarray] = {}  # start -> point waiting to be evaluated
    answers: dict[int, tuple[float, np.ndarray]] = {}
    lowest: dict[int, float] = {}  # start -> its lowest finite loss so far
    state = {"active": R}

    def evaluate_round():  # called with the lock held, when every active run is waiting
        keys = sorted(pending)
        try:
            loss, grad = loss_and_grad(np.array(keys), np.stack([pending.pop(k) for k in keys]))
            for k, f, g in zip(keys, loss, grad):
                if np.isfinite(f):
                    lowest[k] = min(float(f), lowest.get(k, np.inf))
                    answers[k] = (float(f), g)
                else:
                    low = lowest.get(k)
                    answers[k] = (1e25 if low is None else low + 1 + abs(low), np.zeros_like(g))
        except BaseException as error:  # wake every run so none waits forever
            state["error"] = error
        lock.notify_all()

    def run(r):
        def fun(x):
            with lock:
                pending[r] = np.array(x)
                if len(pending) == state["active"]:
                    evaluate_round()
                while r not in answers and "error" not in state:
                    lock.wait()
                if "error" in state:
                    raise state["error"]
                return answers.pop(r)

        try:
            return scipy.optimize.minimize(fun, starts[r], jac=True, method="L-BFGS-B",
                                           bounds=bounds, options=options)
        finally:
            with lock:
                state["active"] -= 1
                if pending and len(pending) == state["active"] and "error" not in state:
                    evaluate_round()

    # scipy's L-BFGS-B calls OpenBLAS on P-vectors: its threads only contend with torch's.
    with blas_threads(1), ThreadPoolExecutor(max_workers=R) as pool:
        return list(pool.map(run, range(R)))


def restart_points(kernel: Kernel, n_restarts: int, rng: np.random.RandomState) -> np.ndarray:
    """The starts (1 + n_restarts, P): the kernel's own theta, then ``n_restarts`` draws uniform
    in the log bounds, drawn from ``rng`` as scikit-learn draws them (same seed, same starts)."""
    bounds = kernel.bounds  # (P, 2), log scale
    starts = [kernel.theta]
    if n_restarts > 0:
        if not np.isfinite(bounds).all():
            raise ValueError("n_restarts_optimizer > 0 needs finite bounds on every "
                             "hyper-parameter; set bounds or n_restarts_optimizer=0.")
        starts += list(rng.uniform(bounds[:, 0], bounds[:, 1], size=(n_restarts, bounds.shape[0])))
    return np.stack(starts)


def minimize_starts(objective, starts: np.ndarray, bounds: np.ndarray, *, like: torch.Tensor,
                    group_of: np.ndarray | None = None, max_batch: int | None = None):
    """L-BFGS-B on ``-objective(group (B,), theta (B, P)) -> (B,)`` from every start (S, P) as one
    batch (:func:`batched_lbfgsb`), the gradient from autograd, evaluated ``max_batch`` starts at
    a time (all at once when None) to bound the memory of the batched Gram matrices.
    ``group_of`` (S,) names each start's group (all 0 when None). Returns the S scipy results."""
    group_of = np.zeros(len(starts), dtype=int) if group_of is None else group_of

    def loss_and_grad(index, theta):
        losses, grads = [], []
        for rows in np.array_split(np.arange(len(index)), -(-len(index) // (max_batch or len(index)))):
            t = torch.tensor(theta[rows], dtype=like.dtype, device=like.device, requires_grad=True)
            value = objective(torch.as_tensor(group_of[index[rows]], device=like.device), t)  # (B,)
            (grad,) = torch.autograd.grad(value.sum(), t)
            losses.append(-value.detach().cpu().numpy())
            grads.append(-grad.cpu().numpy())
        return np.concatenate(losses), np.concatenate(grads)

    return batched_lbfgsb(loss_and_grad, starts, bounds)


def maximize_over_restarts(objective, kernel: Kernel, starts: np.ndarray, *,
                           like: torch.Tensor, n_groups: int = 1,
                           max_batch: int | None = None) -> list[np.ndarray]:
    """Maximise ``objective(group (B,), theta (B, P)) -> (B,)`` over the log hyper-parameters.

    Every group (one GP, or one binary problem of a one-vs-rest classifier) starts from each
    row of ``starts`` (R, P) (see :func:`restart_points`); all groups and starts run as one
    batch (:func:`minimize_starts`). Returns the best theta of each group.
    """
    R = len(starts)
    results = minimize_starts(objective, np.tile(starts, (n_groups, 1)), kernel.bounds, like=like,
                              group_of=np.repeat(np.arange(n_groups), R), max_batch=max_batch)
    for r in results:
        if r.status != 0:
            warnings.warn(f"L-BFGS-B stopped without converging ({r.message}); the "
                          "hyper-parameters may be sub-optimal. Check the kernel bounds.",
                          ConvergenceWarning, stacklevel=3)
    best = []
    for g in range(n_groups):
        winner = min(results[g * R:(g + 1) * R], key=lambda r: r.fun)
        if not np.isfinite(winner.fun) or winner.fun >= 1e25:
            raise ValueError("The log marginal likelihood is -inf at every start: K(X, X) is "
                             "never positive definite. Increase alpha or add a WhiteKernel.")
        best.append(winner.x)
    return best


def loo_log_predictive(kernel: Kernel, theta, X, y, alpha) -> torch.Tensor:
    """Leave-one-out log predictive densities log p(y_i | X, y_-i, theta) (..., n), summed over
    the T outputs, for log hyper-parameters (..., P); -inf where K is not positive definite.

    R&W 5.12: mu_i = y_i - [K^-1 y]_i / [K^-1]_ii and sigma_i^2 = 1 / [K^-1]_ii, from one
    factorisation (no n refits).
    """
    with torch.no_grad():
        K = kernel.gram(X, None, theta) + torch.diag_embed(alpha.expand(X.shape[0]))  # (..., n, n)
        L, failed = cholesky_with_jitter(K, strict=False)
        K_inv = torch.cholesky_inverse(L)  # (..., n, n)
        a = K_inv @ y  # (..., n, T)
        precision = K_inv.diagonal(dim1=-2, dim2=-1)[..., None]  # (..., n, 1): 1 / sigma_i^2
        # R&W 5.10: -1/2 log sigma_i^2 - (y_i - mu_i)^2 / (2 sigma_i^2) - 1/2 log 2pi
        loo = 0.5 * torch.log(precision) - 0.5 * a ** 2 / precision - 0.5 * _LOG_2PI
        return loo.sum(-1).masked_fill(failed[..., None], -math.inf)  # (..., n)


def screen_restarts(objective, loo, starts: np.ndarray, bounds: np.ndarray, *,
                    like: torch.Tensor) -> np.ndarray:
    """The indices (ascending) of the starts (R, P) worth optimising on all the data.

    ``objective(group, theta (B, P)) -> (B,)`` and ``loo(theta (B, P)) -> (B, m)`` (its
    leave-one-out log predictive densities, :func:`loo_log_predictive`) are those of a random
    subsample of m rows. Every start is optimised there first (one batch, L-BFGS-B); a start
    is dropped only on evidence from the subsample:

    - its subsample optimum is that of an earlier kept start (within ``SCREEN_SAME_OPTIMUM``
      in every log hyper-parameter): the two lie in one basin there;
    - or its optimum predicts the subsample significantly worse than the best optimum (the
      one with the highest objective): the summed paired difference of the rows' LOO log
      predictive densities exceeds ``SCREEN_Z`` standard errors, se = sqrt(m) sd(d_i) (the
      model comparison of Vehtari, Gelman & Gabry 2017, eq. 23-24).

    A start whose subsample objective is never finite is kept (no evidence either way).
    """
    results = minimize_starts(objective, starts, bounds, like=like)
    optima = np.stack([r.x for r in results])  # (R, P)
    value = np.array([-r.fun if r.fun < 1e25 else -np.inf for r in results])  # (R,)
    kept = []
    for r in range(len(starts)):
        if not any(np.abs(optima[r] - optima[k]).max() <= SCREEN_SAME_OPTIMUM
                   for k in kept if np.isfinite(value[k])):
            kept.append(r)
    finite = [r for r in kept if np.isfinite(value[r])]
    if len(finite) < 2:
        return np.array(kept)
    best = max(finite, key=lambda r: value[r])
    scores = loo(torch.tensor(optima[finite], dtype=like.dtype, device=like.device))
    scores = scores.cpu().numpy()  # (F, m)
    top = scores[finite.index(best)]  # (m,) the best optimum's rows
    worse = set()
    for r, score in zip(finite, scores):
        d = top - score  # (m,) paired per-row differences
        if np.isfinite(d).all() and d.sum() > SCREEN_Z * np.sqrt(d.size) * d.std():
            worse.add(r)
    return np.array([r for r in kept if r not in worse])


def log_evidence(kernel: Kernel, theta, X, y, alpha, *, strict: bool = True) -> torch.Tensor:
    """The log marginal likelihood log p(y | X, theta) (...,) for log hyper-parameters (..., P).

    ``X`` (n, D), ``y`` (n, T), ``alpha`` a scalar or (n,) tensor added to the diagonal of K.
    """
    K = kernel.gram(X, None, theta)  # (..., n, n)
    K = K + torch.diag_embed(alpha.expand(X.shape[0]))
    return _GaussianLogEvidence.apply(K, y, strict)


class GaussianProcessRegressor(TorchEstimatorMixin, RegressorMixin, BaseEstimator):
    """Exact GP regression with hyper-parameters by (penalised) evidence maximisation.

    The parameters are scikit-learn's, so ``sklearn.gaussian_process.GaussianProcessRegressor``
    code runs unchanged once the kernels come from :mod:`bayesdl.gaussian_process.kernels`.

    Parameters
    ----------
    kernel : Kernel or None, default=None
        The prior covariance. None means ``ConstantKernel(1.0) * RBF(1.0)`` with both
        hyper-parameters optimised, as in scikit-learn 1.9.
        Hyper-parameters may carry priors (``RBF(length_scale_prior=Gamma(3., 6.))``); the
        optimiser then maximises log evidence + log prior.
    alpha : float or array of shape (n_samples,), default=1e-10
        Added to the diagonal of K: observation noise variance (or just numerical jitter).
    optimizer : "fmin_l_bfgs_b" or None, default="fmin_l_bfgs_b"
        L-BFGS-B on the log hyper-parameters within their bounds; None keeps the kernel as given.
    n_restarts_optimizer : int, default=0
        Extra starts drawn log-uniformly within the bounds (must be finite), all optimised
        together as one batch.
    screen_subsample : "auto", int or None, default="auto"
        With restarts, first optimise every start on a random subsample of this many rows
        and run on all the data only the starts whose subsample optimum is distinct and not
        significantly worse (leave-one-out, :func:`screen_restarts`); each of those then
        runs from its own start exactly as without screening. "auto" screens on
        ``SCREEN_ROWS`` = 500 rows when n >= ``SCREEN_MIN_SAMPLES`` = 2,000; an int screens
        on that many rows when it is below n; None runs every start on all the data.
    normalize_y : bool, default=False
        Standardise each output to zero mean and unit variance before fitting (predictions
        are transformed back).
    device, dtype, random_state
        Torch device, ``"float64"``/``"float32"``, and the seed of the restart draws.

    Attributes
    ----------
    kernel_ : Kernel                 the kernel with the fitted hyper-parameters
    X_train_ : ndarray (n, D)        training inputs (kept: the predictive needs them)
    y_train_ : ndarray (n,) or (n, T)  training targets, normalised when ``normalize_y``
    y_train_mean_, y_train_std_ : ndarray (T,)  the normalisation (0 and 1 without it)
    L_ : ndarray (n, n)              lower Cholesky factor of K(X, X) + alpha I
    alpha_ : ndarray (n,) or (n, T)  dual coefficients K^-1 y
    log_marginal_likelihood_value_ : float  log evidence at ``kernel_.theta``
    starts_kept_ : ndarray (S,) or None  the starts (0 = the kernel's theta, then the restarts)
        optimised on all the data after screening; None when the kernel was not optimised
    n_features_in_ : int
    """

    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        "kernel": [None, Kernel],
        "alpha": [Interval(Real, 0, None, closed="left"), "array-like"],
        "optimizer": [StrOptions({"fmin_l_bfgs_b"}), None],
        "n_restarts_optimizer": [Interval(Integral, 0, None, closed="left")],
        "screen_subsample": [StrOptions({"auto"}), Interval(Integral, 2, None, closed="left"),
                             None],
        "normalize_y": ["boolean"],
    }

    def __init__(self, kernel=None, *, alpha=1e-10, optimizer="fmin_l_bfgs_b",
                 n_restarts_optimizer=0, screen_subsample="auto", normalize_y=False,
                 device="cpu", dtype="float64", random_state=None):
        self.kernel = kernel
        self.alpha = alpha
        self.optimizer = optimizer
        self.n_restarts_optimizer = n_restarts_optimizer
        self.screen_subsample = screen_subsample
        self.normalize_y = normalize_y
        self.device = device
        self.dtype = dtype
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.requires_fit = False  # before fit, predict and sample_y use the GP prior
        return tags

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y):
        """Fit the hyper-parameters (unless ``optimizer=None``) and factorise K."""
        self._validate_params()
        # scikit-learn's default (1.9): a free signal variance and length-scale
        self.kernel_ = ConstantKernel(1.0) * RBF(1.0) if self.kernel is None else clone(self.kernel)
        X, y = validate_data(self, _host(X), _host(y), multi_output=True, y_numeric=True,
                             dtype=self._numpy_dtype)
        y = y.astype(self._numpy_dtype, copy=False)
        if self.normalize_y:
            self.y_train_mean_ = np.atleast_1d(y.mean(axis=0))
            std = np.atleast_1d(y.std(axis=0))
            self.y_train_std_ = np.where(std < 10 * np.finfo(std.dtype).eps, 1.0, std)
        else:
            n_outputs = 1 if y.ndim == 1 else y.shape[1]
            self.y_train_mean_ = np.zeros(n_outputs, dtype=y.dtype)
            self.y_train_std_ = np.ones(n_outputs, dtype=y.dtype)
        y = (y - (self.y_train_mean_ if y.ndim > 1 else self.y_train_mean_[0])) / (
            self.y_train_std_ if y.ndim > 1 else self.y_train_std_[0])
        alpha = np.asarray(self.alpha, dtype=self._numpy_dtype)
        if alpha.ndim > 1 or (alpha.ndim == 1 and alpha.shape[0] not in (1, X.shape[0])):
            raise ValueError(f"alpha must be a scalar or an array with one entry per sample "
                             f"({alpha.shape} given for {X.shape[0]} samples).")
        self.X_train_, self.y_train_ = X, y

        Xt, yt, at = self._to_torch(X), self._targets(), self._to_torch(alpha)
        # Small problems run fastest on one torch thread (the ops are too small to split).
        with torch_threads(1 if X.shape[0] < SINGLE_THREAD_MAX_SAMPLES else torch.get_num_threads()):
            self.starts_kept_ = None
            if self.optimizer is not None and self.kernel_.n_dims > 0:
                rng = check_random_state(self.random_state)
                starts = restart_points(self.kernel_, self.n_restarts_optimizer, rng)
                self.starts_kept_ = self._screen(starts, rng, Xt, yt, at)
                (self.kernel_.theta,) = maximize_over_restarts(
                    lambda groups, theta: self._objective(theta, Xt, yt, at), self.kernel_,
                    starts[self.starts_kept_], like=Xt,
                    max_batch=max(1, BATCH_GRAM_BYTES // (Xt.element_size() * X.shape[0] ** 2)))
            with torch.no_grad():
                K = self.kernel_.gram(Xt) + torch.diag_embed(at.expand(X.shape[0]))
                L, _ = cholesky_with_jitter(K)
                self._set_factor(L, yt)
        return self

    def _screen(self, starts: np.ndarray, rng, X, y, alpha) -> np.ndarray:
        """The starts to optimise on all the data: :func:`screen_restarts` on a subsample of
        rows drawn from ``rng`` (after the starts, so these stay scikit-learn's)."""
        n = X.shape[0]
        rows = SCREEN_ROWS if n >= SCREEN_MIN_SAMPLES else 0
        if self.screen_subsample is None or len(starts) < 2:
            rows = 0
        elif self.screen_subsample != "auto":
            rows = self.screen_subsample if self.screen_subsample < n else 0
        if not rows:
            return np.arange(len(starts))
        index = torch.as_tensor(np.sort(rng.choice(n, rows, replace=False)), device=X.device)
        X, y = X[index], y[index]  # (m, D), (m, T)
        alpha = alpha[index] if alpha.dim() == 1 and alpha.shape[0] == n > 1 else alpha
        with torch_threads(1 if rows < SINGLE_THREAD_MAX_SAMPLES else torch.get_num_threads()):
            return screen_restarts(
                lambda groups, theta: self._objective(theta, X, y, alpha),
                lambda theta: loo_log_predictive(self.kernel_, theta, X, y, alpha),
                starts, self.kernel_.bounds, like=X)

    def _targets(self) -> torch.Tensor:
        """The (normalised) training targets as an (n, T) tensor."""
        y = self._to_torch(self.y_train_)
        return y[:, None] if y.dim() == 1 else y

    def _set_factor(self, L: torch.Tensor, y: torch.Tensor) -> None:
        """Store L, the dual coefficients a = K^-1 y and the log evidence (R&W Algorithm 2.1)."""
        a = torch.cholesky_solve(y, L)  # (n, T)
        n, T = y.shape
        log_ev = (-0.5 * (y * a).sum() - T * torch.log(torch.diagonal(L)).sum()
                  - 0.5 * n * T * _LOG_2PI)
        self.L_ = self._to_numpy(L)
        self.alpha_ = self._to_numpy(a[:, 0] if self.y_train_.ndim == 1 else a)
        self.log_marginal_likelihood_value_ = float(log_ev)

    def _objective(self, theta: torch.Tensor, X, y, alpha) -> torch.Tensor:
        """Log evidence + log prior for a batch of log hyper-parameters (R, P): (R,)."""
        value = log_evidence(self.kernel_, theta, X, y, alpha, strict=False)
        if self.kernel_.has_prior:
            value = value + self.kernel_.log_prior(theta)
        return value

    def log_marginal_likelihood(self, theta=None, eval_gradient=False, clone_kernel=True):
        """log p(y | X, theta) for log hyper-parameters ``theta`` (or the fitted value).

        ``theta`` may be (P,) or a batch (R, P); with ``eval_gradient`` the gradient with
        respect to theta (from autograd) is returned too, as in scikit-learn.
        ``clone_kernel`` is accepted for compatibility; the kernel is never modified.
        """
        check_is_fitted(self)
        if theta is None:
            if eval_gradient:
                raise ValueError("Gradient can only be evaluated for theta!=None")
            return self.log_marginal_likelihood_value_
        X = self._to_torch(self.X_train_)
        theta = torch.tensor(np.asarray(theta, dtype=float), dtype=X.dtype, device=X.device,
                             requires_grad=eval_gradient)
        alpha = self._to_torch(np.asarray(self.alpha, dtype=self._numpy_dtype))
        with torch.set_grad_enabled(eval_gradient):
            value = log_evidence(self.kernel_, theta, X, self._targets(), alpha, strict=False)
        result = self._to_numpy(value)[()] if value.dim() else float(value.detach())
        if not eval_gradient:
            return result
        if not value.requires_grad:  # no free hyper-parameters: theta is empty, so is the gradient
            return result, self._to_numpy(torch.zeros_like(theta))
        (grad,) = torch.autograd.grad(value.sum(), theta)
        return result, self._to_numpy(grad)

    # -- conditioning on new data -------------------------------------------------------------
    def condition_on_observations(self, X, y) -> "GaussianProcessRegressor":
        """A copy conditioned on extra rows, with the same hyper-parameters and normalisation.

        The Cholesky factor is extended by one block (O(n^2 m) instead of O(n^3)):
        [[L, 0], [B^T, C]] with B = L^-1 K(X_old, X_new) and C C^T = K(X_new) + alpha - B^T B.
        """
        check_is_fitted(self)
        if np.ndim(self.alpha) > 0 and np.size(self.alpha) > 1:
            raise ValueError("condition_on_observations needs a scalar alpha; with per-sample "
                             "alpha refit on all the data.")
        X, y = validate_data(self, _host(X), _host(y), multi_output=True, y_numeric=True,
                             dtype=self._numpy_dtype, reset=False)
        y = np.asarray(y, dtype=self._numpy_dtype)
        if y.ndim != self.y_train_.ndim:
            raise ValueError(f"y must have the shape of the training targets "
                             f"({self.y_train_.ndim}-D), got {y.ndim}-D.")
        mean = self.y_train_mean_ if y.ndim > 1 else self.y_train_mean_[0]
        std = self.y_train_std_ if y.ndim > 1 else self.y_train_std_[0]
        new = copy.deepcopy(self)
        new.X_train_ = np.concatenate([self.X_train_, X])
        new.y_train_ = np.concatenate([self.y_train_, (y - mean) / std])
        with torch.no_grad():
            X_old, X_new = self._to_torch(self.X_train_), self._to_torch(X)
            L = self._to_torch(self.L_)  # (n, n)
            B = torch.linalg.solve_triangular(L, self.kernel_(X_old, X_new), upper=False)  # (n, m)
            S = self.kernel_(X_new) + float(np.asarray(self.alpha).reshape(-1)[0]) * torch.eye(
                X_new.shape[0], dtype=L.dtype, device=L.device) - B.T @ B  # (m, m)
            C, _ = cholesky_with_jitter(S)
            L_new = torch.cat([torch.cat([L, L.new_zeros(L.shape[0], C.shape[0])], 1),
                               torch.cat([B.T, C], 1)], 0)  # (n + m, n + m)
            new._set_factor(L_new, new._targets())
        return new

    # -- prediction -------------------------------------------------------------------------
    def _single_output(self) -> bool:
        y = getattr(self, "y_train_", None)  # None before fit: the prior has one output
        return y is None or y.ndim == 1 or y.shape[1] == 1

    def _posterior(self, X, *, full_cov: bool):
        """Latent mean (m, T) and covariance (m, m) or variance (m,), in normalised units.

        Before fit, the GP prior: mean 0 and ``kernel`` (scikit-learn's fixed
        ``ConstantKernel(1.0, "fixed") * RBF(1.0, "fixed")`` when None), as scikit-learn
        predicts and samples from an unfitted regressor.
        """
        X = self._to_torch(self._validate_X(X, reset=False))
        if not hasattr(self, "X_train_"):
            kernel = self.kernel if self.kernel is not None else ConstantKernel(
                1.0, constant_value_bounds="fixed") * RBF(1.0, length_scale_bounds="fixed")
            with torch.no_grad():
                return X.new_zeros(X.shape[0], 1), kernel(X) if full_cov else kernel.diag(X)
        X_train = self._to_torch(self.X_train_)
        a = self._to_torch(self.alpha_)
        a = a[:, None] if a.dim() == 1 else a  # (n, T)
        with torch.no_grad():
            K_trans = self.kernel_(X, X_train)  # (m, n)
            mean = K_trans @ a  # (m, T)       R&W 2.25
            V = torch.linalg.solve_triangular(self._to_torch(self.L_), K_trans.T, upper=False)
            if full_cov:
                cov = self.kernel_(X) - V.T @ V  # (m, m)   R&W 2.26
                return mean, cov
            var = self.kernel_.diag(X) - (V * V).sum(0)  # (m,)
            if (var < 0).any():
                warnings.warn("Predicted variances smaller than 0 (round-off); setting those "
                              "variances to 0.", RuntimeWarning, stacklevel=3)
                var = var.clamp_min(0.0)
            return mean, var

    def _y_scale(self):
        """The normalisation of y as tensors (T,): mean and std (0 and 1 before fit)."""
        if not hasattr(self, "y_train_mean_"):
            return self._to_torch(np.zeros(1)), self._to_torch(np.ones(1))
        return self._to_torch(self.y_train_mean_), self._to_torch(self.y_train_std_)

    def _unnormalise(self, mean, spread, power):
        """Map normalised mean (m, T) and variances/stds (..., T-broadcast) to data units."""
        y_mean, y_std = self._y_scale()
        return mean * y_std + y_mean, spread[..., None] * y_std ** power  # (m, T), (..., T)

    def predict(self, X, return_std=False, return_cov=False):
        """Predictive mean, and optionally its std (m,) or covariance (m, m) per output.

        The std and covariance are those of the latent f plus any WhiteKernel in the kernel
        (not ``alpha``), as in scikit-learn. Before fit they are the GP prior's (mean 0).
        """
        if return_std and return_cov:
            raise RuntimeError("At most one of return_std or return_cov can be requested.")
        mean, spread = self._posterior(X, full_cov=return_cov)
        mean, spread = self._unnormalise(mean, spread, 2)
        squeeze = self._single_output()
        mean = self._to_numpy(mean[:, 0] if squeeze else mean)
        if not (return_std or return_cov):
            return mean
        spread = spread[..., 0] if squeeze else spread
        if return_std:
            return mean, self._to_numpy(spread.sqrt())
        return mean, self._to_numpy(spread)

    def predict_dist(self, X, full_cov: bool | None = None) -> torch.distributions.Distribution:
        """The predictive distribution of f(X) (plus any WhiteKernel noise).

        ``full_cov`` None gives a ``MultivariateNormal`` over the m points (one per output,
        batch shape (T,)) when m <= ``FULL_COVARIANCE_MAX_POINTS``, otherwise independent
        ``Normal``s of shape (m,) or (m, T).
        """
        m = _host(X).shape[0] if hasattr(_host(X), "shape") else len(X)
        full = m <= FULL_COVARIANCE_MAX_POINTS if full_cov is None else full_cov
        mean, spread = self._posterior(X, full_cov=full)
        single = self._single_output()
        if not full:
            mean, var = self._unnormalise(mean, spread, 2)
            std = var.sqrt()
            if single:
                return torch.distributions.Normal(mean[:, 0], std[:, 0])
            return torch.distributions.Normal(mean, std)
        scale_tril = jittered_cholesky(spread)  # (m, m)
        y_mean, y_std = self._y_scale()
        loc = (mean * y_std + y_mean).T  # (T, m)
        tril = scale_tril * y_std[:, None, None]  # (T, m, m)
        if single:
            return torch.distributions.MultivariateNormal(loc[0], scale_tril=tril[0])
        return torch.distributions.MultivariateNormal(loc, scale_tril=tril)

    def sample_y(self, X, n_samples=1, random_state=0):
        """Draws of the predictive at X: (m, n_samples), or (m, T, n_samples) for T outputs."""
        dist = self.predict_dist(X, full_cov=True)
        gen = self._torch_generator(random_state)
        loc, tril = dist.loc, dist.scale_tril  # (..., m), (..., m, m)
        z = torch.randn(*loc.shape, n_samples, generator=gen, dtype=loc.dtype,
                        device=loc.device)  # (..., m, S)
        draws = loc[..., None] + tril @ z  # (..., m, S)
        if draws.dim() == 3:  # (T, m, S) -> (m, T, S)
            draws = draws.permute(1, 0, 2)
        return self._to_numpy(draws)
