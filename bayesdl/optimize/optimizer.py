"""Bayesian optimisation with a Gaussian-process surrogate (Jones et al. 1998; Snoek et al. 2012).

Loop: encode the observed points to the unit cube and standardise their values; fit a GP
(constant x Matern-5/2 ARD + white noise, with priors on every hyper-parameter, warm-started
from the previous fit); maximise the acquisition over the cube by multi-start L-BFGS-B from the
best of a scrambled Sobol raw set; project on the valid points (integers rounded, one-hot
snapped); decode. ``ask(n)`` builds a batch by the Kriging believer: after each point the GP is
conditioned on its own posterior mean there (Ginsbourger et al. 2010). A value of NaN told for
a point marks a failed evaluation: it is never fitted and never suggested again.
"""

from __future__ import annotations

import math
import warnings
from numbers import Real as RealNumber

import numpy as np
import scipy.optimize
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ..gaussian_process import ConstantKernel, GaussianProcessRegressor, Matern, WhiteKernel
from ..core.linalg import jittered_cholesky
from ..core.threads import torch_threads
from ..gaussian_process.gpr import JitterWarning, batched_lbfgsb
from ..io import read_safetensors, write_safetensors
from .acquisition import ThompsonSampling, get_acquisition
from .space import Space

_STATE_KIND = "bayesdl.optimize.Optimizer"
# Sobol points the initial design draws, at most, looking for ones not evaluated yet.
_MAX_INITIAL_DRAWS = 4096


def default_kernel(n_dims: int) -> ConstantKernel:
    """Constant x Matern-5/2 ARD + White on the unit cube with standardised outputs.

    Priors: length scales ~ Gamma(3, 6) and signal variance ~ Gamma(2, 0.15), the priors of
    BoTorch's SingleTaskGP (Balandat et al. 2020); noise variance ~ Gamma(1.1, 30), the noise
    prior of Optuna's GPSampler, above a floor of 1e-8 (a floor of 1e-6 cost a factor 7 in
    regret on Branin and 1.5 on Hartmann-6 at 50 evaluations). The length-scale prior (mean 0.5,
    little mass above 1.5) keeps every dimension in play: with the wide LogNormal prior of
    Hvarfner et al. (2024) the fit could give a dimension that matters a length scale of 5,
    and on Hartmann-6 four of ten runs then stalled in a local minimum. The noise prior is
    nearly flat down to the floor, so on a deterministic function the noise fits small and
    the model resolves improvements of 1e-3 near the minimum (a LogNormal(-4, 1) noise prior
    held it near 1e-3 and the regret near 1e-2).
    """
    Gamma = torch.distributions.Gamma
    matern = Matern(np.full(n_dims, 1 / 3), (5e-3, 1e2), nu=2.5,  # the prior's mode
                    length_scale_prior=Gamma(3.0, 6.0))
    signal = ConstantKernel(1.0, (1e-2, 1e2), constant_value_prior=Gamma(2.0, 0.15))
    noise = WhiteKernel(1e-4, (1e-8, 1.0), noise_level_prior=Gamma(1.1, 30.0))
    return signal * matern + noise


class _LatentPosterior:
    """The latent posterior of a fitted GP at new points, differentiable in them.

    The training-side quantities (inputs, dual coefficients a = K^-1 y, the Cholesky factor L,
    the noise-free kernel's log hyper-parameters, the failed points) are converted once per
    fit, so each of the many evaluations of the acquisition search costs one cross-kernel
    (m, n) and one triangular solve.
    """

    def __init__(self, gp: GaussianProcessRegressor, failed: np.ndarray | None):
        self.gp = gp
        self.signal = gp.kernel_.k1  # constant x Matern: the noise-free part of the kernel
        self.theta = torch.as_tensor(self.signal.theta)
        self.X = torch.as_tensor(gp.X_train_)  # (n, d)
        self.a = torch.as_tensor(gp.alpha_)  # (n,)
        self.L = torch.as_tensor(gp.L_)  # (n, n)
        self.prior_var = self.signal.diag(self.X[:1], self.theta)[0]  # stationary: k(x, x)
        self.failed = None if failed is None else torch.as_tensor(failed)  # (k, d)
        self.length_scale = torch.as_tensor(np.atleast_1d(self.signal.k2.length_scale))

    def __call__(self, U: torch.Tensor):
        """Latent mean and std (standardised units) at U (m, d): (m,), (m,)."""
        K_trans = self.signal.gram(U, self.X, self.theta)  # (m, n)
        mean = K_trans @ self.a  # R&W 2.25
        V = torch.linalg.solve_triangular(self.L, K_trans.T, upper=False)  # (n, m)
        var = self.prior_var - (V * V).sum(0)  # R&W 2.26
        return mean, var.clamp_min(1e-18).sqrt()

    def sample(self, U: torch.Tensor, generator: torch.Generator, n: int = 1) -> torch.Tensor:
        """n joint draws of the latent f at U (m, d), without the observation noise: (m, n).

        Thompson sampling needs f itself: draws of y would add an independent noise to every
        candidate, and the arg-min of a noisy objective's draws would chase that noise.
        """
        K_trans = self.signal.gram(U, self.X, self.theta)  # (m, n_train)
        V = torch.linalg.solve_triangular(self.L, K_trans.T, upper=False)  # (n_train, m)
        cov = self.signal.gram(U, None, self.theta) - V.T @ V  # R&W 2.26
        z = torch.randn(U.shape[0], n, generator=generator, dtype=U.dtype)
        return (K_trans @ self.a)[:, None] + jittered_cholesky(cov) @ z  # R&W 2.25

    def failure_penalty(self, U: torch.Tensor) -> torch.Tensor:
        """sum_j log(1 - exp(-r_j^2 / 2)) over failed points x_j: (m,).

        r_j is the distance from U to x_j in units of the fitted length scales, so the
        acquisition is -inf at a failed point and damped within about one length scale of
        it (a local penalty in the spirit of Gonzalez et al. 2016); without it the
        unexplored region around a crash keeps attracting the next suggestions.
        """
        if self.failed is None:
            return torch.zeros(U.shape[0], dtype=U.dtype)
        r2 = (((U[:, None, :] - self.failed[None]) / self.length_scale) ** 2).sum(-1)  # (m, k)
        return torch.log(-torch.expm1(-0.5 * r2)).sum(-1)


class BayesianOptimizer:
    """Ask-and-tell Bayesian optimiser (minimisation), in the style of scikit-optimize.

    Parameters
    ----------
    space : Space, list of dimensions or dict of named dimensions
    n_initial_points : int, default=10
        Points drawn (scrambled Sobol) before the surrogate is used.
    acq_func : str or Acquisition, default="LogEI"
        "LogEI", "PI", "UCB" or "TS" (Thompson sampling).
    n_raw_samples : int, default=1024
        Sobol points scored to choose the L-BFGS-B starts.
    n_restarts : int, default=8
        L-BFGS-B starts: the best ``n_restarts - 1`` raw samples and the incumbent.
    random_state : int or None
    """

    def __init__(self, space, *, n_initial_points: int = 10, acq_func="LogEI",
                 n_raw_samples: int = 1024, n_restarts: int = 8, random_state=None):
        self.space = space if isinstance(space, Space) else Space(space)
        if n_initial_points < 1:
            raise ValueError(f"n_initial_points must be at least 1, got {n_initial_points}.")
        self.n_initial_points = int(n_initial_points)
        self.acquisition = get_acquisition(acq_func)
        self.acq_func = acq_func if isinstance(acq_func, str) else self.acquisition.name
        if n_raw_samples < 1 or n_restarts < 1:
            raise ValueError(f"n_raw_samples and n_restarts must be at least 1, got "
                             f"{n_raw_samples} and {n_restarts}.")
        self.n_raw_samples = int(n_raw_samples)
        self.n_restarts = int(n_restarts)
        self.random_state = random_state
        self._seed = int(check_random_state(random_state).randint(2**31 - 1))
        self._n_asked_initial = 0
        self.x_iters: list[list] = []
        self.func_vals: list[float] = []
        self._theta = None  # fitted log hyper-parameters, the warm start of the next fit
        self._gp = None
        self._latent = None  # the _LatentPosterior of the last GP used

    # -- observations -----------------------------------------------------------------------
    def tell(self, x, y):
        """Record one point (a list of values) and its value, or lists of both; NaN = failed.

        Returns :meth:`result`, as scikit-optimize's ``Optimizer.tell`` does.
        """
        xs, ys = (x, y) if np.ndim(y) > 0 else ([x], [y])
        if np.ndim(y) > 0 and not all(isinstance(p, (list, tuple, np.ndarray)) for p in xs):
            raise ValueError("tell got a list of values, so x must be a list of points (lists "
                             "of values); for one point give one value: tell(x, y).")
        if len(xs) != len(ys):
            raise ValueError(f"tell got {len(xs)} points but {len(ys)} values.")
        for xi, yi in zip(xs, ys):
            xi = self.space.check_point(xi)
            if not isinstance(yi, RealNumber) and not (np.ndim(yi) == 0 and np.issubdtype(
                    np.asarray(yi).dtype, np.number)):
                raise ValueError(f"the value at {xi} must be a real number (NaN for a failed "
                                 f"evaluation), got {yi!r}.")
            yi = float(yi)
            if np.isinf(yi):
                raise ValueError(f"the value at {xi} is infinite; report a failed evaluation "
                                 "as NaN instead.")
            self.x_iters.append(xi)
            self.func_vals.append(yi)
        self._gp = None
        return self.result()

    @property
    def Xi(self) -> list[list]:
        """The points told so far (scikit-optimize's name for ``x_iters``)."""
        return self.x_iters

    @property
    def yi(self) -> list[float]:
        """Their values, NaN for failed ones (scikit-optimize's name for ``func_vals``)."""
        return self.func_vals

    @property
    def _ok(self) -> np.ndarray:
        return ~np.isnan(np.asarray(self.func_vals, dtype=float))

    def _initial_design(self, n: int) -> list[list]:
        """The next n points of one scrambled Sobol sequence (resumes after save/load),
        skipping any point already told: a history told to a new optimiser (a resumed log)
        is not evaluated again, and the run continues as the uninterrupted one would."""
        sobol = torch.quasirandom.SobolEngine(self.space.n_dims, scramble=True, seed=self._seed)
        sobol.fast_forward(self._n_asked_initial)
        excluded, chosen = self._excluded(), []
        for _ in range(_MAX_INITIAL_DRAWS):
            u = self.space.project(sobol.draw(1, dtype=torch.float64).numpy())  # (1, d)
            self._n_asked_initial += 1
            if excluded.size == 0 or np.abs(excluded - u).max(1).min() > 1e-9:
                chosen.append(u[0])
                excluded = np.vstack([excluded, u])
                if len(chosen) == n:
                    return self.space.decode(np.stack(chosen))
        raise ValueError("every candidate point has been evaluated already: the space is "
                         "exhausted (enlarge it or stop).")

    # -- surrogate --------------------------------------------------------------------------
    def _fit(self) -> GaussianProcessRegressor:
        ok = self._ok
        U = self.space.encode([x for x, good in zip(self.x_iters, ok) if good])  # (n, d)
        y = np.asarray(self.func_vals, dtype=float)[ok]
        self._y_mean, self._y_std = y.mean(), (y.std() if y.std() > 0 else 1.0)
        z = (y - self._y_mean) / self._y_std  # standardised outputs
        kernel = default_kernel(self.space.n_dims)
        if self._theta is not None and len(self._theta) == kernel.n_dims:
            kernel.theta = self._theta  # warm start from the previous step
        gp = GaussianProcessRegressor(kernel, alpha=1e-8, n_restarts_optimizer=1 if
                                      self._theta is None else 0,
                                      random_state=self._seed + len(self.func_vals))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", JitterWarning)
            gp.fit(U, z)
        self._theta = gp.kernel_.theta
        self._best = float(z.min())
        return gp

    def _posterior(self, gp: GaussianProcessRegressor) -> "_LatentPosterior":
        """The (cached) latent posterior of ``gp``."""
        if self._latent is None or self._latent.gp is not gp:
            failed = [x for x, ok in zip(self.x_iters, self._ok) if not ok]
            self._latent = _LatentPosterior(gp, self.space.encode(failed) if failed else None)
        return self._latent

    def acquisition_values(self, U, gp=None) -> torch.Tensor:
        """The acquisition at unit-cube points U (m, d) (differentiable in U), penalised
        around failed points (see :meth:`_LatentPosterior.failure_penalty`)."""
        posterior = self._posterior(gp or self._surrogate())
        U = torch.as_tensor(U, dtype=torch.float64)
        mean, std = posterior(U)
        return self.acquisition.score(mean, std, self._best) + posterior.failure_penalty(U)

    def _surrogate(self):
        if self._gp is None:
            self._gp = self._fit()
        return self._gp

    # -- suggestions ------------------------------------------------------------------------
    def ask(self, n_points: int | None = None):
        """The next point (a list), or a list of ``n_points`` distinct points."""
        single = n_points is None
        n = 1 if single else int(n_points)
        if n < 1:
            raise ValueError(f"n_points must be at least 1, got {n}.")
        n_ok = int(self._ok.sum())
        if n_ok < max(self.n_initial_points, 2):
            points = self._initial_design(n)
        else:
            with torch_threads(1):  # small matrices: extra threads only contend
                points = self._ask_model(n)
        return points[0] if single else points

    def _excluded(self) -> np.ndarray:
        """Encodings of every point already told (failed ones included): (k, d)."""
        return self.space.encode(self.x_iters)

    def _ask_model(self, n: int) -> list[list]:
        gp = self._surrogate()
        excluded = self._excluded()
        rng = np.random.default_rng(self._seed + len(self.func_vals))
        chosen: list[np.ndarray] = []
        for k in range(n):
            u = self._maximise(gp, excluded, rng)
            chosen.append(u)
            excluded = np.vstack([excluded, u])
            if k + 1 < n:  # Kriging believer: pretend f(u) equals its posterior mean
                with torch.no_grad():
                    mean, _ = self._posterior(gp)(torch.as_tensor(u[None]))
                gp = gp.condition_on_observations(u[None], mean.numpy())
        return self.space.decode(np.stack(chosen))

    def _maximise(self, gp, excluded: np.ndarray, rng) -> np.ndarray:
        """The valid unit-cube point of largest acquisition not in ``excluded``: (d,)."""
        d = self.space.n_dims
        sobol = torch.quasirandom.SobolEngine(d, scramble=True, seed=int(rng.integers(2**31)))
        raw = sobol.draw(self.n_raw_samples, dtype=torch.float64)  # (R, d)
        if isinstance(self.acquisition, ThompsonSampling):
            with torch.no_grad():
                gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
                posterior = self._posterior(gp)
                score = (-posterior.sample(raw, gen)[:, 0] + posterior.failure_penalty(raw)).numpy()
            return self._first_new(raw.numpy()[np.argsort(-score, kind="stable")], excluded)
        with torch.no_grad():
            raw_scores = self.acquisition_values(raw, gp)  # (R,)
        top = raw[torch.argsort(raw_scores, descending=True)[: self.n_restarts - 1]]  # (S-1, d)
        # The incumbent starts a local search too: the acquisition's peak next to the best
        # point is what refines a minimum once found, and the Sobol set rarely lands on it.
        starts = np.vstack([top.numpy(), self._incumbent()])  # (S, d)

        def negative(index, U):  # (B,), (B, d) -> (B,), (B, d)
            U = torch.tensor(U, requires_grad=True)
            value = self.acquisition_values(U, gp)
            (grad,) = torch.autograd.grad(value.sum(), U)
            return -value.detach().numpy(), -grad.numpy()

        # One L-BFGS-B per start, each with its own line search and stopping rule, evaluated
        # together as a batch: a start that has converged stops costing evaluations. (One
        # L-BFGS-B on the sum over the starts ran to its iteration limit, 200 batched
        # evaluations, as some start always still moved: ~8x the work for the same optimum.)
        results = batched_lbfgsb(negative, starts, np.array([(0.0, 1.0)] * d),
                                 options={"maxiter": 200})
        refined = self.space.project(np.stack([r.x for r in results]))  # (S, d) valid points
        candidates = np.vstack([refined, self.space.project(raw.numpy())])
        with torch.no_grad():
            scores = self.acquisition_values(candidates, gp).numpy()
        return self._first_new(candidates[np.argsort(-scores, kind="stable")], excluded)

    def _incumbent(self) -> np.ndarray:
        """The encoding of the best successful point: (1, d)."""
        y = np.asarray(self.func_vals, dtype=float)
        return self.space.encode([self.x_iters[int(np.nanargmin(y))]])

    def _first_new(self, ordered: np.ndarray, excluded: np.ndarray) -> np.ndarray:
        """The first (projected) row of ``ordered`` not within 1e-9 of an excluded point."""
        ordered = self.space.project(ordered)
        for u in ordered:
            if excluded.size == 0 or np.abs(excluded - u).max(1).min() > 1e-9:
                return u
        raise ValueError("every candidate point has been evaluated already: the space is "
                         "exhausted (enlarge it or stop).")

    # -- results and persistence -------------------------------------------------------------
    def result(self) -> scipy.optimize.OptimizeResult:
        """scikit-optimize's result: x, fun, x_iters, func_vals (NaN for failed points).

        Before any evaluation has succeeded ``x`` is None and ``fun`` NaN.
        """
        y = np.asarray(self.func_vals, dtype=float)
        best = int(np.nanargmin(y)) if self._ok.any() else None
        return scipy.optimize.OptimizeResult(
            x=None if best is None else self.x_iters[best],
            fun=math.nan if best is None else float(y[best]), x_iters=list(self.x_iters),
            func_vals=y, space=self.space, models=[], specs={"acq_func": self.acq_func},
            random_state=self.random_state)

    def save(self, path) -> None:
        """Write the space, settings, history and warm-start state (safetensors + JSON)."""
        tensors = {"func_vals": torch.as_tensor(np.asarray(self.func_vals, dtype=float))}
        if self._theta is not None:
            tensors["theta"] = torch.as_tensor(self._theta)
        config = {"kind": _STATE_KIND, "space": self.space.to_config(),
                  "x_iters": self.x_iters, "n_initial_points": self.n_initial_points,
                  "acq_func": self.acq_func, "acq_params": vars(self.acquisition),
                  "n_raw_samples": self.n_raw_samples,
                  "n_restarts": self.n_restarts, "seed": self._seed,
                  "n_asked_initial": self._n_asked_initial}
        write_safetensors(path, tensors, config)

    @classmethod
    def load(cls, path) -> "BayesianOptimizer":
        """An optimiser that continues exactly where the saved one stopped."""
        config, tensors = read_safetensors(path, what="bayesdl optimiser state")
        if config.get("kind") != _STATE_KIND:
            raise ValueError(f"{path} holds no optimiser state (it is a {config.get('kind')!r}).")
        acquisition = type(get_acquisition(config["acq_func"]))(**config.get("acq_params", {}))
        opt = cls(Space.from_config(config["space"]), n_initial_points=config["n_initial_points"],
                  acq_func=acquisition, n_raw_samples=config["n_raw_samples"],
                  n_restarts=config["n_restarts"])
        opt.acq_func = config["acq_func"]
        opt._seed = config["seed"]
        opt._n_asked_initial = config["n_asked_initial"]
        opt.x_iters = [list(x) for x in config["x_iters"]]
        opt.func_vals = tensors["func_vals"].tolist()
        opt._theta = tensors["theta"].numpy() if "theta" in tensors else None
        return opt


# The short name of earlier releases (scikit-optimize's), kept so existing code keeps working.
Optimizer = BayesianOptimizer


def minimize(fn, space, n_calls: int = 50, n_initial_points: int = 10, random_state=None,
             acq_func="LogEI", callback=None, x0=None, y0=None) -> scipy.optimize.OptimizeResult:
    """Minimise ``fn(x)`` over ``space`` in ``n_calls`` evaluations (like skopt's gp_minimize).

    ``fn`` takes a list of values and returns a float; NaN marks a failed evaluation (an
    exception raised by ``fn`` propagates, as in scikit-optimize). ``callback`` (a callable or
    a list of them) gets the ``OptimizeResult`` so far after each evaluation and stops the run
    by returning True. ``x0`` (a point or a list of points) is evaluated first, within the
    ``n_calls``; with their values ``y0`` it is told without evaluating, on top of them. Told
    points count towards the ``n_initial_points`` of the initial design. Returns an
    ``OptimizeResult`` with x, fun, x_iters and func_vals.
    """
    if n_calls < 1:
        raise ValueError(f"n_calls must be at least 1, got {n_calls}.")
    callbacks = [] if callback is None else list(callback) if isinstance(callback, (list, tuple)) \
        else [callback]
    opt = BayesianOptimizer(space, n_initial_points=min(n_initial_points, n_calls),
                            acq_func=acq_func, random_state=random_state)
    single = x0 is not None and np.ndim(x0[0]) == 0 and not isinstance(x0[0], (list, tuple))
    x0 = [] if x0 is None else [x0] if single else list(x0)
    if y0 is not None:
        y0 = [y0] if np.ndim(y0) == 0 else list(y0)
        if len(y0) != len(x0):
            raise ValueError(f"y0 holds {len(y0)} values for {len(x0)} points of x0.")
        opt.tell(x0, y0)
        x0 = []
    elif len(x0) > n_calls:
        raise ValueError(f"x0 holds {len(x0)} points to evaluate but n_calls is {n_calls}; "
                         "raise n_calls or give their values as y0.")
    for k in range(n_calls):
        x = x0[k] if k < len(x0) else opt.ask()
        result = opt.tell(x, fn(x))
        if any([bool(c(result)) for c in callbacks]):  # every callback sees every step
            break
    if not opt._ok.any():
        raise ValueError(f"every one of the {len(opt.func_vals)} evaluations failed (NaN); "
                         "check the objective.")
    return result
