"""Gaussian process classification with the Laplace approximation (R&W chapter 3, PRML 6.4.5-6).

Binary model: f ~ GP(0, k_theta), p(t = 1 | f) = sigma(f) (logistic). The posterior over the
latent f at the training inputs is approximated by a Gaussian at its mode f^, found by Newton's
method (R&W Algorithm 3.1, PRML 6.83-6.84), with W = diag(pi (1 - pi)) and B = I + W^1/2 K W^1/2.
Predictions (R&W Algorithm 3.2, PRML 6.87-6.88): the latent f* at a test point has mean
k*^T (t - pi) and variance k(x*, x*) - v^T v with v = L^-1 W^1/2 k*, and the class probability
integrates the logistic over that Gaussian: ``integration="probit"`` uses the erf-mixture
approximation of the logistic that scikit-learn uses (a sum of five scaled probits, for which
the integral is closed-form, PRML 4.152-4.153); ``"quadrature"`` uses 64-point Gauss-Hermite.

The hyper-parameters maximise the Laplace approximation of the evidence,
log q(t | theta) = -1/2 a^T f^ + log p(t | f^) - sum log L_ii (R&W 3.32). Its gradient comes from
autograd: the mode enters through one Newton step from the detached mode, whose value is f^
and whose derivative is df^/dtheta (the Newton map has zero Jacobian at its fixed point), so the
implicit term of R&W 5.22-5.24 is included without hand-written derivatives.

Several classes: one binary classifier per class against the rest (scikit-learn's
``one_vs_rest``), probabilities normalised over classes. All classes and restarts are
optimised as one batch.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state

from .._base import TorchEstimatorMixin
from ..core.threads import torch_threads
from .gpr import SINGLE_THREAD_MAX_SAMPLES, maximize_over_restarts, restart_points
from .kernels import RBF, ConstantKernel, Kernel

# The logistic sigma(x) ~ sum_i c_i Phi(lambda_i x) + sum_i c_i / 2, as in scikit-learn (the
# coefficients of sklearn.gaussian_process._gpc), so fixed-kernel probabilities match it.
_LAMBDAS = (0.41, 0.4, 0.37, 0.44, 0.39)
_COEFS = (-1854.8214151, 3516.89893646, 221.29346712, 128.12323805, -2010.49422654)
_HERMITE_POINTS = 64


def _log_likelihood(t: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """sum_n log sigma((2 t_n - 1) f_n) for labels t in {0, 1}: (...,)."""
    return torch.nn.functional.logsigmoid((2 * t - 1) * f).sum(-1)


def _newton_terms(K, t, f):
    """One step of R&W Algorithm 3.1 from f: (pi, W^1/2, L, a, f_new), batched over (...)."""
    pi = torch.sigmoid(f)  # (..., n)             line 4
    W = pi * (1 - pi)
    W_sr = W.sqrt()
    eye = torch.eye(K.shape[-1], dtype=K.dtype, device=K.device)
    B = eye + W_sr[..., :, None] * K * W_sr[..., None, :]  # (..., n, n)  line 5
    L = torch.linalg.cholesky(B)
    b = W * f + (t - pi)  # (..., n)               line 6
    Kb = (K @ b[..., None])[..., 0]
    a = b - W_sr * torch.cholesky_solve((W_sr * Kb)[..., None], L)[..., 0]  # line 7
    return pi, W_sr, L, a, (K @ a[..., None])[..., 0]  # line 8: f = K a


def posterior_mode(K: torch.Tensor, t: torch.Tensor, max_iter: int):
    """Newton's iteration for the mode (R&W Algorithm 3.1), batched over the leading dims.

    Stops when no problem's approximate evidence rises by more than 1e-10 (scikit-learn's
    rule). Returns ``(f, pi, W_sr, L, log_q)`` of the last step.
    """
    f = torch.zeros_like(t)
    previous = torch.full(t.shape[:-1], -math.inf, dtype=t.dtype, device=t.device)
    for _ in range(max_iter):
        pi, W_sr, L, a, f = _newton_terms(K, t, f)
        # line 10: log q(t | X) = -1/2 a^T f + log p(t | f) - sum log L_ii  (R&W 3.32)
        log_q = (-0.5 * (a * f).sum(-1) + _log_likelihood(t, f)
                 - torch.log(L.diagonal(dim1=-2, dim2=-1)).sum(-1))
        if bool((log_q - previous < 1e-10).all()):
            break
        previous = log_q
    return f, pi, W_sr, L, log_q


def laplace_evidence(kernel: Kernel, theta, X, t, max_iter: int) -> torch.Tensor:
    """log q(t | X, theta) (R&W 3.32), differentiable in ``theta`` (..., P) by autograd.

    ``t`` (..., n) labels in {0, 1}, one row per problem in the batch.
    """
    K = kernel.gram(X, None, theta)  # (..., n, n)
    with torch.no_grad():
        f_mode = posterior_mode(K, t, max_iter)[0]
    # One Newton step from the detached mode: value f^, derivative df^/dtheta (R&W 5.24).
    _, _, _, a, f = _newton_terms(K, t, f_mode)
    W_sr = (torch.sigmoid(f) * torch.sigmoid(-f)).sqrt()  # W at f, so log|B| sees df^/dtheta
    eye = torch.eye(K.shape[-1], dtype=K.dtype, device=K.device)
    L = torch.linalg.cholesky(eye + W_sr[..., :, None] * K * W_sr[..., None, :])
    return (-0.5 * (a * f).sum(-1) + _log_likelihood(t, f)
            - torch.log(L.diagonal(dim1=-2, dim2=-1)).sum(-1))


class GaussianProcessClassifier(TorchEstimatorMixin, ClassifierMixin, BaseEstimator):
    """GP classifier: binary Laplace approximation, one-vs-rest for several classes.

    Parameters
    ----------
    kernel : Kernel or None, default=None
        None means ``ConstantKernel(1.0, "fixed") * RBF(1.0, "fixed")``, as in scikit-learn.
        Each one-vs-rest problem fits its own copy.
    optimizer : "fmin_l_bfgs_b" or None, default="fmin_l_bfgs_b"
        L-BFGS-B on the Laplace evidence; None keeps the kernel.
    n_restarts_optimizer : int, default=0
        Extra starts, log-uniform in the (finite) bounds; all run as one batch.
    max_iter_predict : int, default=100
        Newton iterations for the posterior mode.
    multi_class : "one_vs_rest", default="one_vs_rest"
        Scikit-learn's parameter; one-vs-rest is the scheme offered (no "one_vs_one").
    integration : {"probit", "quadrature"}, default="probit"
        How predict_proba integrates the logistic over the latent Gaussian (module docstring).
    device, dtype, random_state
        Torch device, ``"float64"``/``"float32"``, seed of the restart draws.

    Attributes
    ----------
    classes_ : ndarray (C,)
    kernels_ : list of Kernel              the fitted kernel of each binary problem
    kernel_ : Kernel                       ``kernels_[0]`` (the only one when binary)
    X_train_ : ndarray (n, D)
    targets_ : ndarray (B, n)              0/1 labels of each binary problem (B = 1 or C)
    pi_, W_sr_ : ndarray (B, n)            sigma(f^) and W^1/2 at the mode
    L_ : ndarray (B, n, n)                 Cholesky factor of B = I + W^1/2 K W^1/2
    log_marginal_likelihood_value_ : float  Laplace evidence (mean over one-vs-rest problems)
    """

    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        "kernel": [None, Kernel],
        "optimizer": [StrOptions({"fmin_l_bfgs_b"}), None],
        "n_restarts_optimizer": [Interval(Integral, 0, None, closed="left")],
        "max_iter_predict": [Interval(Integral, 1, None, closed="left")],
        "multi_class": [StrOptions({"one_vs_rest"})],
        "integration": [StrOptions({"probit", "quadrature"})],
    }

    def __init__(self, kernel=None, *, optimizer="fmin_l_bfgs_b", n_restarts_optimizer=0,
                 max_iter_predict=100, multi_class="one_vs_rest", integration="probit",
                 device="cpu", dtype="float64", random_state=None):
        self.kernel = kernel
        self.optimizer = optimizer
        self.n_restarts_optimizer = n_restarts_optimizer
        self.max_iter_predict = max_iter_predict
        self.multi_class = multi_class
        self.integration = integration
        self.device = device
        self.dtype = dtype
        self.random_state = random_state

    def fit(self, X, y):
        """Find the mode of each binary problem, optimising its kernel unless ``optimizer=None``."""
        self._validate_params()
        X, y = self._validate_X_y(X, y, y_numeric=False)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise ValueError(f"GaussianProcessClassifier needs at least 2 classes in y; got 1 "
                             f"class (only class {self.classes_[0]!r}).")
        positive = self.classes_[1:] if self.classes_.size == 2 else self.classes_
        self.targets_ = np.stack([(y == c) for c in positive]).astype(self._numpy_dtype)  # (B, n)
        self.X_train_ = X
        base = (ConstantKernel(1.0, constant_value_bounds="fixed") * RBF(1.0, length_scale_bounds="fixed")
                if self.kernel is None else self.kernel)
        kernels = [clone(base) for _ in positive]
        Xt, T = self._to_torch(X), self._to_torch(self.targets_)
        with torch_threads(1 if X.shape[0] < SINGLE_THREAD_MAX_SAMPLES else torch.get_num_threads()):
            if self.optimizer is not None and base.n_dims > 0:
                best = maximize_over_restarts(
                    lambda groups, theta: laplace_evidence(base, theta, Xt, T[groups],
                                                           self.max_iter_predict),
                    base, restart_points(base, self.n_restarts_optimizer,
                                         check_random_state(self.random_state)),
                    like=Xt, n_groups=len(kernels))
                for kernel, theta in zip(kernels, best):
                    kernel.theta = theta
            self.kernels_ = kernels
            with torch.no_grad():
                K = torch.stack([k.gram(Xt) for k in kernels])  # (B, n, n)
                _, pi, W_sr, L, log_q = posterior_mode(K, T, self.max_iter_predict)
        self.pi_, self.W_sr_, self.L_ = self._to_numpy(pi), self._to_numpy(W_sr), self._to_numpy(L)
        self.log_marginal_likelihood_value_ = float(log_q.mean())
        return self

    @property
    def kernel_(self) -> Kernel:
        check_is_fitted(self)
        return self.kernels_[0]

    def log_marginal_likelihood(self, theta=None, eval_gradient=False, clone_kernel=True):
        """Laplace evidence at log hyper-parameters ``theta`` (and its gradient, by autograd).

        Several classes, as in scikit-learn: ``theta`` is either one kernel's (P,) values,
        used for every one-vs-rest problem, or the C problems' values concatenated (C P,);
        the result is the mean evidence over the problems, and ``eval_gradient`` is refused.
        ``clone_kernel`` is accepted for compatibility; the kernels are never modified.
        """
        check_is_fitted(self)
        if theta is None:
            if eval_gradient:
                raise ValueError("Gradient can only be evaluated for theta!=None")
            return self.log_marginal_likelihood_value_
        Xt = self._to_torch(self.X_train_)
        theta = np.asarray(theta, dtype=float)
        B, P = len(self.kernels_), self.kernels_[0].n_dims
        if B > 1 and eval_gradient:
            raise NotImplementedError("The gradient of the evidence is only given for a binary "
                                      "fit; with several classes call eval_gradient=False.")
        if theta.shape not in ((P,), (B * P,)):
            raise ValueError(f"theta must hold {P} values (one kernel's) or {B * P} (one kernel "
                             f"per one-vs-rest problem), got shape {theta.shape}.")
        t = torch.tensor(theta.reshape(-1, P) if theta.size else np.zeros((1, 0)), dtype=Xt.dtype,
                         device=Xt.device, requires_grad=eval_gradient)  # (1 or B, P)
        targets = self._to_torch(self.targets_)  # (B, n)
        with torch.set_grad_enabled(eval_gradient):
            value = laplace_evidence(self.kernels_[0], t.expand(B, P), Xt, targets,
                                     self.max_iter_predict).mean()
        if not eval_gradient:
            return float(value)
        if not value.requires_grad:  # no free hyper-parameters: theta is empty, so is the gradient
            return float(value), np.zeros(0)
        (grad,) = torch.autograd.grad(value, t)
        return float(value.detach()), self._to_numpy(grad[0])

    def _latent(self, X):
        """Mean and variance of f* per binary problem (R&W Algorithm 3.2): (B, m), (B, m)."""
        check_is_fitted(self)
        X = self._to_torch(self._validate_X(X, reset=False))
        X_train = self._to_torch(self.X_train_)
        T, pi = self._to_torch(self.targets_), self._to_torch(self.pi_)
        W_sr, L = self._to_torch(self.W_sr_), self._to_torch(self.L_)
        with torch.no_grad():
            K_star = torch.stack([k(X_train, X) for k in self.kernels_])  # (B, n, m)
            mean = ((T - pi)[:, None, :] @ K_star)[:, 0, :]  # (B, m)  line 4
            v = torch.linalg.solve_triangular(L, W_sr[..., None] * K_star, upper=False)  # line 5
            var = torch.stack([k.diag(X) for k in self.kernels_]) - (v * v).sum(1)  # line 6
        return mean, var.clamp_min(0.0)

    def _positive_probability(self, mean, var):
        """E[sigma(f*)] under N(mean, var), (B, m), computed in float64.

        The probit mixture adds terms of size ~3500 that cancel to a probability, so float32
        would lose about 3 digits (errors of 3e-4 seen); the (B, m) arrays are cheap in float64.
        """
        dtype = mean.dtype
        mean, var = mean.double(), var.double()
        if self.integration == "quadrature":
            nodes, weights = np.polynomial.hermite.hermgauss(_HERMITE_POINTS)
            nodes = torch.as_tensor(nodes, dtype=mean.dtype, device=mean.device)
            weights = torch.as_tensor(weights, dtype=mean.dtype, device=mean.device)
            f = mean[..., None] + math.sqrt(2.0) * var.sqrt()[..., None] * nodes  # (B, m, H)
            return ((torch.sigmoid(f) * weights).sum(-1) / math.sqrt(math.pi)).to(dtype)
        lam = torch.as_tensor(_LAMBDAS, dtype=mean.dtype, device=mean.device)[:, None, None]
        coef = torch.as_tensor(_COEFS, dtype=mean.dtype, device=mean.device)[:, None, None]
        # int Phi(lam f) N(f | mu, s^2) df = Phi(lam mu / sqrt(1 + lam^2 s^2))  (PRML 4.152),
        # written as scikit-learn writes it so the two agree to round-off
        alpha = 1.0 / (2.0 * var)
        integrals = (torch.sqrt(math.pi / alpha) * torch.erf(lam * mean * torch.sqrt(alpha / (alpha + lam ** 2)))
                     / (2.0 * torch.sqrt(var * 2.0 * math.pi)))
        return ((coef * integrals).sum(0) + 0.5 * coef.sum()).to(dtype)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (m, C), integrating the logistic over the latent posterior."""
        p = self._positive_probability(*self._latent(X))  # (B, m)
        if p.shape[0] == 1:
            return self._to_numpy(torch.stack([1 - p[0], p[0]], 1))
        return self._to_numpy((p / p.sum(0, keepdim=True)).T)  # one-vs-rest normalisation

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(1)]

    def predict_dist(self, X) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(probs=torch.as_tensor(self.predict_proba(X)))
