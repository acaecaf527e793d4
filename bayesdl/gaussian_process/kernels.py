"""Covariance functions for Gaussian processes, computed in torch (R&W chapter 4, PRML 6.4).

The kernels keep scikit-learn's names, parameters, bounds, ``theta`` (the log of the free
hyper-parameters), ``bounds``, ``get_params``/``set_params`` and repr by subclassing
scikit-learn's kernels, so a scikit-learn user switches by changing the import. What changes
is the computation: ``kernel(X, Y)`` and ``kernel.diag(X)`` return torch tensors on the
device of ``X``, and the gradients with respect to ``theta`` come from torch autograd instead
of hand-written derivatives.

The core of every kernel is ``gram(X, Y, theta)``: the Gram matrix as a differentiable function
of a tensor ``theta`` of log hyper-parameters. ``theta`` may carry leading batch dimensions,
``(R, n_dims)`` gives ``(R, N, M)``: this is how the regressor optimises all its restarts as one
batch.

Each hyper-parameter may carry a prior, a ``torch.distributions.Distribution`` over its natural
(not log) value, e.g. ``RBF(length_scale_prior=Gamma(3.0, 6.0))``; the regressor then maximises
the log posterior ``log p(y | theta) + sum log p(value)`` (the MAP of the natural value, as
GPyTorch and BoTorch do, without a log-Jacobian term).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.gaussian_process import kernels as _sk

from ..io import Configurable

__all__ = [
    "Kernel", "RBF", "Matern", "RationalQuadratic", "ExpSineSquared", "DotProduct",
    "WhiteKernel", "ConstantKernel", "Sum", "Product", "Exponentiation",
]

_SQRT3, _SQRT5 = math.sqrt(3.0), math.sqrt(5.0)


def _as_tensor(X, like: torch.Tensor | None = None) -> torch.Tensor:
    """``X`` as a floating tensor (numpy arrays become float64; tensors keep dtype/device)."""
    if isinstance(X, torch.Tensor):
        return X if X.is_floating_point() else X.double()
    dtype = like.dtype if like is not None else torch.float64
    device = like.device if like is not None else None
    return torch.as_tensor(np.asarray(X, dtype=float), dtype=dtype, device=device)


def _distance(X: torch.Tensor, Y: torch.Tensor, length_scale: torch.Tensor) -> torch.Tensor:
    """Euclidean distance ``|x/l - y/l|`` of every pair, (..., N, M), for ``l`` of shape (..., L).

    The differences are formed directly (not via ``|x|^2 - 2 x.y + |y|^2``), so distances near
    zero are exact and the gradient at zero distance is 0 rather than NaN.
    """
    if length_scale.shape[-1] not in (1, X.shape[-1]):
        raise ValueError(f"the kernel has {length_scale.shape[-1]} length-scales (ARD) but X has "
                         f"{X.shape[-1]} features; give one length-scale, or one per feature.")
    Xs = X / length_scale[..., None, :]  # (..., N, D)
    Ys = Y / length_scale[..., None, :]  # (..., M, D)
    return torch.cdist(Xs, Ys, compute_mode="donot_use_mm_for_euclid_dist")


def _prior_params(prior) -> dict[str, torch.Tensor]:
    """The constructor arguments of a torch distribution (stored ones, or properties such as
    LogNormal's ``loc``), read back from ``arg_constraints``."""
    return {k: getattr(prior, k) for k in prior.arg_constraints
            if k in vars(prior) or isinstance(getattr(type(prior), k, None), property)}


def _prior_to_config(prior) -> dict | None:
    if prior is None:
        return None
    params = {k: torch.as_tensor(v).tolist() for k, v in _prior_params(prior).items()}
    return {"distribution": type(prior).__name__, "params": params}


def _prior_from_config(config):
    if config is None:
        return None
    cls = getattr(torch.distributions, config["distribution"], None)
    if not (isinstance(cls, type) and issubclass(cls, torch.distributions.Distribution)):
        raise ValueError(f"unknown prior distribution {config['distribution']!r} in the file.")
    return cls(**{k: torch.as_tensor(v, dtype=torch.float64) for k, v in config["params"].items()})


class Kernel(Configurable):
    """Mixin over a scikit-learn kernel: torch evaluation, priors, operators, persistence.

    Subclasses implement ``_gram(X, Y, values)`` and ``_diag(X, values)``, where ``values``
    maps each hyper-parameter name to a tensor of shape (..., n_elements) (the batch
    dimensions of ``theta``), and ``Y`` is None for ``k(X, X)``.
    """

    # -- evaluation ---------------------------------------------------------------------------
    def __call__(self, X, Y=None, eval_gradient=False):
        """The Gram matrix ``k(X, Y)`` (``k(X, X)`` when Y is None) as a torch tensor.

        ``eval_gradient`` also returns, as scikit-learn does, the derivative of ``k(X, X)``
        with respect to the log hyper-parameters ``theta``, (N, N, n_dims), here computed by
        autograd through :meth:`gram` (one backward pass per hyper-parameter; to
        differentiate a scalar of K, differentiate ``gram(X, Y, theta)`` directly).
        """
        if not eval_gradient:
            return self.gram(X, Y, None)
        if Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        X = _as_tensor(X)
        theta = torch.as_tensor(self.theta, dtype=X.dtype, device=X.device)
        K = self.gram(X, None, None)  # (N, N)
        if theta.numel() == 0:
            return K, K.new_zeros(*K.shape, 0)
        return K, torch.autograd.functional.jacobian(lambda t: self.gram(X, None, t), theta)

    def gram(self, X, Y=None, theta: torch.Tensor | None = None) -> torch.Tensor:
        """``k(X, Y)`` at log hyper-parameters ``theta`` (..., n_dims): (..., N, M).

        ``theta=None`` uses the kernel's current values (no batch dimension).
        """
        X = _as_tensor(X)
        Y = None if Y is None else _as_tensor(Y, X)
        return self._gram(X, Y, self._values(theta, X))

    def diag(self, X, theta: torch.Tensor | None = None) -> torch.Tensor:
        """The diagonal of ``k(X, X)``, (..., N), without forming the matrix."""
        X = _as_tensor(X)
        return self._diag(X, self._values(theta, X))

    def _values(self, theta, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """Hyper-parameter values: ``exp(theta)`` slices for the free ones, constants otherwise."""
        values, i = {}, 0
        for hp in self.hyperparameters:
            if theta is not None and not hp.fixed:
                values[hp.name] = theta[..., i:i + hp.n_elements].exp()
                i += hp.n_elements
            else:
                value = np.atleast_1d(np.asarray(getattr(self, hp.name), dtype=float))
                values[hp.name] = torch.as_tensor(value, dtype=like.dtype, device=like.device)
        return values

    # -- priors -------------------------------------------------------------------------------
    def log_prior(self, theta: torch.Tensor) -> torch.Tensor:
        """``sum log p(value)`` over the free hyper-parameters that carry a prior: (...,)."""
        total, i = theta.new_zeros(theta.shape[:-1]), 0
        for hp in self.hyperparameters:
            if hp.fixed:
                continue
            prior = getattr(self, hp.name + "_prior", None)
            if prior is not None:
                value = theta[..., i:i + hp.n_elements].exp()
                total = total + _log_prob(prior, value).sum(-1)
            i += hp.n_elements
        return total

    @property
    def has_prior(self) -> bool:
        return any(getattr(self, hp.name + "_prior", None) is not None
                   for hp in self.hyperparameters if not hp.fixed)

    # -- operators ----------------------------------------------------------------------------
    def __add__(self, b):
        return Sum(self, _operand(b))

    def __radd__(self, b):
        return Sum(_operand(b), self)

    def __mul__(self, b):
        return Product(self, _operand(b))

    def __rmul__(self, b):
        return Product(_operand(b), self)

    def __eq__(self, b):
        """Same class and parameters, priors compared by distribution and arguments
        (scikit-learn's comparison would compare the prior objects by identity)."""
        return type(self) is type(b) and self.get_config() == b.get_config()

    def __pow__(self, b):
        return Exponentiation(self, b)

    # -- persistence --------------------------------------------------------------------------
    def get_config(self) -> dict:
        """JSON description: the class name and its parameters (kernels and priors nested)."""
        config = {}
        for name, value in self.get_params(deep=False).items():
            if isinstance(value, Kernel):
                value = {"kernel": type(value).__name__, "config": value.get_config()}
            elif name.endswith("_prior"):
                value = _prior_to_config(value)
            elif isinstance(value, np.ndarray):
                value = value.tolist()
            config[name] = value
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Kernel":
        params = {}
        for name, value in config.items():
            if isinstance(value, dict) and "kernel" in value:
                sub = globals().get(value["kernel"])
                if not (isinstance(sub, type) and issubclass(sub, Kernel)):
                    raise ValueError(f"unknown kernel {value['kernel']!r} in the file.")
                value = sub.from_config(value["config"])
            elif name.endswith("_prior"):
                value = _prior_from_config(value)
            elif name.endswith("_bounds") and isinstance(value, list):
                value = tuple(value) if np.ndim(value) == 1 else np.asarray(value)
            elif isinstance(value, list):  # an ARD length-scale vector, saved as a list
                value = np.asarray(value, dtype=float)
            params[name] = value
        return cls(**params)


def _operand(b) -> "Kernel":
    """The other side of ``+`` or ``*``: a bayesdl kernel, or a number as a ConstantKernel."""
    if isinstance(b, Kernel):
        return b
    if isinstance(b, _sk.Kernel):
        raise ValueError(f"cannot combine a bayesdl kernel with scikit-learn's {b!r}: import "
                         "every kernel from bayesdl.gaussian_process.kernels.")
    return ConstantKernel(b)


def _log_prob(prior, value: torch.Tensor) -> torch.Tensor:
    """``prior.log_prob(value)`` in the dtype and on the device of ``value``."""
    moved = type(prior)(**{k: torch.as_tensor(v, dtype=value.dtype, device=value.device)
                           for k, v in _prior_params(prior).items()}, validate_args=False)
    return moved.log_prob(value)


class _PriorMixin:
    """Stores ``<name>_prior`` keyword arguments (they are scikit-learn params too)."""

    def _store_priors(self, **priors):
        for name, prior in priors.items():
            if prior is not None and not isinstance(prior, torch.distributions.Distribution):
                raise ValueError(f"{name} must be a torch.distributions.Distribution over the "
                                 f"natural value, e.g. Gamma(3.0, 6.0); got {prior!r}.")
            setattr(self, name, prior)


class RBF(Kernel, _PriorMixin, _sk.RBF):
    """Squared exponential ``k(x, y) = exp(-|x - y|^2 / (2 l^2))`` (R&W 4.9, PRML 6.23).

    ``length_scale`` a scalar, or a vector with one entry per input dimension (ARD).
    """

    def __init__(self, length_scale=1.0, length_scale_bounds=(1e-5, 1e5), length_scale_prior=None):
        super().__init__(length_scale, length_scale_bounds)
        self._store_priors(length_scale_prior=length_scale_prior)

    def _gram(self, X, Y, v):
        d = _distance(X, X if Y is None else Y, v["length_scale"])  # (..., N, M)
        return torch.exp(-0.5 * d * d)

    def _diag(self, X, v):
        return X.new_ones(v["length_scale"].shape[:-1] + X.shape[:1])


class Matern(Kernel, _PriorMixin, _sk.Matern):
    """Matern kernel for ``nu`` in {0.5, 1.5, 2.5, inf} (R&W 4.14, 4.16-4.17).

    With ``r = |x - y| / l``: nu=0.5 ``exp(-r)``; nu=1.5 ``(1 + sqrt3 r) exp(-sqrt3 r)``;
    nu=2.5 ``(1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r)``; nu=inf the RBF.
    """

    def __init__(self, length_scale=1.0, length_scale_bounds=(1e-5, 1e5), nu=1.5,
                 length_scale_prior=None):
        super().__init__(length_scale, length_scale_bounds, nu)
        self._store_priors(length_scale_prior=length_scale_prior)

    def _gram(self, X, Y, v):
        r = _distance(X, X if Y is None else Y, v["length_scale"])  # (..., N, M)
        if self.nu == 0.5:
            return torch.exp(-r)
        if self.nu == 1.5:
            return (1.0 + _SQRT3 * r) * torch.exp(-_SQRT3 * r)
        if self.nu == 2.5:
            return (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * torch.exp(-_SQRT5 * r)
        if self.nu == np.inf:
            return torch.exp(-0.5 * r * r)
        raise ValueError(f"Matern nu={self.nu} is not supported; use 0.5, 1.5, 2.5 or np.inf.")

    def _diag(self, X, v):
        return X.new_ones(v["length_scale"].shape[:-1] + X.shape[:1])


class RationalQuadratic(Kernel, _PriorMixin, _sk.RationalQuadratic):
    """``k(x, y) = (1 + |x - y|^2 / (2 alpha l^2))^(-alpha)`` (R&W 4.19), a scale mixture of RBFs."""

    def __init__(self, length_scale=1.0, alpha=1.0, length_scale_bounds=(1e-5, 1e5),
                 alpha_bounds=(1e-5, 1e5), length_scale_prior=None, alpha_prior=None):
        super().__init__(length_scale, alpha, length_scale_bounds, alpha_bounds)
        self._store_priors(length_scale_prior=length_scale_prior, alpha_prior=alpha_prior)

    def _gram(self, X, Y, v):
        if np.ndim(self.length_scale) and np.size(self.length_scale) > 1:
            raise ValueError("RationalQuadratic takes a scalar length_scale (no ARD), as in "
                             "scikit-learn; use RBF or Matern for one length-scale per input.")
        d = _distance(X, X if Y is None else Y, v["length_scale"])  # (..., N, M)
        alpha = v["alpha"][..., None]  # (..., 1, 1)
        return (1.0 + d * d / (2.0 * alpha)) ** (-alpha)

    def _diag(self, X, v):
        return X.new_ones(v["length_scale"].shape[:-1] + X.shape[:1])


class ExpSineSquared(Kernel, _PriorMixin, _sk.ExpSineSquared):
    """Periodic kernel ``k(x, y) = exp(-2 sin^2(pi |x - y| / p) / l^2)`` (R&W 4.31)."""

    def __init__(self, length_scale=1.0, periodicity=1.0, length_scale_bounds=(1e-5, 1e5),
                 periodicity_bounds=(1e-5, 1e5), length_scale_prior=None, periodicity_prior=None):
        super().__init__(length_scale, periodicity, length_scale_bounds, periodicity_bounds)
        self._store_priors(length_scale_prior=length_scale_prior,
                           periodicity_prior=periodicity_prior)

    def _gram(self, X, Y, v):
        d = _distance(X, X if Y is None else Y, X.new_ones(1))  # (N, M)
        length_scale, period = v["length_scale"][..., None], v["periodicity"][..., None]
        return torch.exp(-2.0 * (torch.sin(math.pi * d / period) / length_scale) ** 2)

    def _diag(self, X, v):
        return X.new_ones(v["length_scale"].shape[:-1] + X.shape[:1])


class DotProduct(Kernel, _PriorMixin, _sk.DotProduct):
    """Linear kernel ``k(x, y) = sigma_0^2 + x^T y`` (Bayesian linear regression, PRML 6.1)."""

    def __init__(self, sigma_0=1.0, sigma_0_bounds=(1e-5, 1e5), sigma_0_prior=None):
        super().__init__(sigma_0, sigma_0_bounds)
        self._store_priors(sigma_0_prior=sigma_0_prior)

    def _gram(self, X, Y, v):
        sigma_0 = v["sigma_0"][..., None]  # (..., 1, 1)
        return sigma_0 ** 2 + X @ (X if Y is None else Y).T

    def _diag(self, X, v):
        return v["sigma_0"] ** 2 + (X * X).sum(-1)


class WhiteKernel(Kernel, _PriorMixin, _sk.WhiteKernel):
    """Observation noise: ``noise_level * I`` on ``k(X, X)``, zero between different sets."""

    def __init__(self, noise_level=1.0, noise_level_bounds=(1e-5, 1e5), noise_level_prior=None):
        super().__init__(noise_level, noise_level_bounds)
        self._store_priors(noise_level_prior=noise_level_prior)

    def _gram(self, X, Y, v):
        noise = v["noise_level"]  # (..., 1)
        if Y is None:  # a diagonal matrix: its backward reads only the diagonal
            return torch.diag_embed(noise.expand(*noise.shape[:-1], X.shape[0]))
        return (noise[..., None] * 0.0).expand(*noise.shape[:-1], X.shape[0], Y.shape[0])

    def _diag(self, X, v):
        return v["noise_level"].expand(*v["noise_level"].shape[:-1], X.shape[0])


class ConstantKernel(Kernel, _PriorMixin, _sk.ConstantKernel):
    """``k(x, y) = constant_value``: a signal variance when multiplied, an offset when added."""

    def __init__(self, constant_value=1.0, constant_value_bounds=(1e-5, 1e5),
                 constant_value_prior=None):
        super().__init__(constant_value, constant_value_bounds)
        self._store_priors(constant_value_prior=constant_value_prior)

    def _gram(self, X, Y, v):
        c = v["constant_value"][..., None]  # (..., 1, 1)
        return c.expand(*c.shape[:-2], X.shape[0], X.shape[0] if Y is None else Y.shape[0])

    def _diag(self, X, v):
        return v["constant_value"].expand(*v["constant_value"].shape[:-1], X.shape[0])


class _Operator(Kernel):
    """Shared evaluation of the binary operators: split ``theta`` between ``k1`` and ``k2``."""

    def _split(self, theta):
        if theta is None:
            return None, None
        n1 = self.k1.n_dims
        return theta[..., :n1], theta[..., n1:]

    def gram(self, X, Y=None, theta=None):
        t1, t2 = self._split(theta)
        return self._combine(self.k1.gram(X, Y, t1), self.k2.gram(X, Y, t2))

    def diag(self, X, theta=None):
        t1, t2 = self._split(theta)
        return self._combine(self.k1.diag(X, t1), self.k2.diag(X, t2))

    def log_prior(self, theta):
        t1, t2 = self._split(theta)
        return self.k1.log_prior(t1) + self.k2.log_prior(t2)

    @property
    def has_prior(self):
        return self.k1.has_prior or self.k2.has_prior


class Sum(_Operator, _sk.Sum):
    """``k1 + k2``."""

    @staticmethod
    def _combine(a, b):
        return a + b


class Product(_Operator, _sk.Product):
    """``k1 * k2`` (elementwise)."""

    @staticmethod
    def _combine(a, b):
        return a * b


class Exponentiation(Kernel, _sk.Exponentiation):
    """``kernel ** exponent`` (elementwise)."""

    def gram(self, X, Y=None, theta=None):
        return self.kernel.gram(X, Y, theta) ** self.exponent

    def diag(self, X, theta=None):
        return self.kernel.diag(X, theta) ** self.exponent

    def log_prior(self, theta):
        return self.kernel.log_prior(theta)

    @property
    def has_prior(self):
        return self.kernel.has_prior
