"""Bayesian logistic regression by the Laplace approximation (PRML 4.3.2-4.3.4, 4.4-4.5).

Model: p(C_k | x) = softmax_k(W phi(x)) with phi(x) = (x, 1) (PRML 4.104; for two classes one
logit and the sigmoid, 4.87), and the Gaussian prior w_j ~ N(0, 1/alpha_j) on every weight:
one ``alpha`` for all (isotropic) or one per feature (ARD, shared by the classes). The
intercept has a flat prior (``intercept_precision=0``) or a broad Gaussian one.

Fitting finds the MAP by Newton's method, i.e. IRLS (PRML 4.92-4.100): each step is one pass
over the data accumulating the gradient and Hessian of the log-likelihood,

    grad = sum_n (t_n - y_n) (x) phi_n,   H = sum_n (diag(y_n) - y_n y_n^T) (x) phi_n phi_n^T,

(PRML 4.96, 4.97, 4.109-4.110), through the EM engine's data path
(:func:`bayesdl.core.em.accumulate`): chunks of arrays, ``.npy`` files or user ``Batches``,
summed in float64 and all-reduced under ``torch.distributed``. An array's rows are read in
place (no copy), their class codes and weights beside them. With many parameters
(``solver="lbfgs"``) the MAP is found by L-BFGS on gradient-only passes (N P each, the
intercept kept apart so the rows are never copied), run until its estimate of the Newton
step is below ``tol``; then one Hessian pass at that point both confirms the MAP (the exact
Newton step is below ``tol``; if not, Newton steps follow) and gives the posterior
precision. On many rows (at least 4 x 200 per parameter, arrays and ``.npy`` files, a
proper prior on every weight) L-BFGS starts from the MAP of every k-th row (200 rows per
parameter, found by Newton) with that subsample's posterior precision as its initial
Hessian: 6 gradient passes instead of 11 at N = 200,000, P = 101. The stop rule is the same,
so the returned covariance is the inverse Hessian at the returned MAP, whose exact Newton
step is below ``tol`` relative to |w| (the Hessian pass checks it, in float32 too).
The posterior is N(w_MAP, S_N) with S_N^-1 = H + diag(alpha) (PRML 4.143-4.144).

``alpha=None`` learns the prior precision by maximising the Laplace evidence (PRML 4.137):
MacKay's fixed point gamma = sum_j (1 - alpha_j S_jj), alpha = gamma / |w_MAP|^2 (the
analogue of PRML 3.91-3.92), alternated with warm-started MAP fits.

Predictions: ``predictive="probit"`` moderates the logits by their posterior variance
(PRML 4.153-4.155), ``"mc"`` averages ``n_samples`` posterior draws, ``"map"`` uses w_MAP
alone. For two classes the probit is close to the exact predictive (within 0.02 of 100,000
posterior draws in the tests). For the softmax it moderates each pairwise logit difference
by that difference's variance (:func:`bayesdl.nn.laplace.probit_probs`), so the variance
along the softmax's unidentified shift of all logits, which a weak prior or the flat
intercept makes large, does not count; the per-logit extended probit counted it and was
0.05-0.27 from the Monte-Carlo predictive in the worst class probability on iris, wine and
digits, the pairwise form 0.015-0.12. Use ``"mc"`` where those probabilities matter.

With a softmax the logits are invariant to adding one vector to every class's weights, so a
weight with zero prior precision (the flat intercept, or alpha = 0) is not identified. The
MAP and covariance are then those of the centred solution (the class sum of that weight
pinned to zero), which gives the same predictions.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import deque
from numbers import Integral, Real

import numpy as np
import scipy.linalg
import scipy.optimize
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from torch.nn.functional import binary_cross_entropy_with_logits

from .._base import TorchEstimatorMixin
from ..core import distributed
from ..core.em import Batches, DataSource, accumulate
from ..core.linalg import host_gram, host_matmul
from ..core.threads import torch_threads
from ..nn.laplace import logit_probs, probit_probs
from ..uncertainty import MonteCarloCategorical

# Parameters above which solver="auto" starts with L-BFGS: a Newton pass costs N P^2, an
# L-BFGS pass N P, and Newton from zero takes ~7 passes against L-BFGS's tens.
_NEWTON_MAX_PARAMS = 32
_ALPHA_MAX = 1e12  # an ARD precision this large has pruned its feature
# Values per chunk (rows x features x softmax outputs): a Newton pass forms a P x P Hessian
# per chunk, so chunks are larger than the EM default (the product Phi^T R Phi then runs at
# BLAS speed), and a gradient pass's per-chunk calls (about ten small torch operations) are
# then a small part of its time: at N = 200,000, D = 100 a binary fit took 0.35 s in 10,000-row
# chunks against 0.43 s in 2,600-row ones. A softmax Hessian forms a (B, K P) root, hence the
# division by the outputs K.
_CHUNK_ELEMENTS = 2**20
# Parameters from which the P x P Cholesky factorisations use torch's threads.
_THREADED_ALGEBRA_PARAMS = 1024
# The L-BFGS start from a subsample (_subsample_start): rows per parameter in the subsample
# (its relative error ~ (P / n)^1/2 ~ 0.07 is about L-BFGS's rate per full pass from there),
# used when the data have at least _SUBSAMPLE_MIN_FRACTION_INV times as many rows, Newton on
# it stopped at a relative step of _SUBSAMPLE_TOL or given up after _SUBSAMPLE_MAX_ITER steps;
# its own start comes from a subsample of it, down to _SUBSAMPLE_MIN_ROWS_PER_PARAM.
_SUBSAMPLE_ROWS_PER_PARAM = 200
_SUBSAMPLE_MIN_ROWS_PER_PARAM = 20
_SUBSAMPLE_MIN_FRACTION_INV = 4
_SUBSAMPLE_TOL = 3e-2
_SUBSAMPLE_MAX_ITER = 20


class BayesianLogisticRegression(ClassifierMixin, TorchEstimatorMixin, BaseEstimator):
    """Bayesian logistic (binary) and softmax (multinomial) regression by the Laplace method.

    Parameters
    ----------
    alpha : prior precision of the weights: a number (isotropic), an array (n_features,) (one
        per feature), or None to learn it by evidence maximisation.
    ard : with ``alpha=None``, learn one precision per feature (automatic relevance
        determination) instead of one for all.
    fit_intercept : add an intercept.
    intercept_precision : prior precision of the intercept; 0 is a flat prior.
    predictive : ``"probit"``, ``"mc"`` or ``"map"`` for ``predict_proba``/``predict_dist``
        (with more than two classes ``"probit"`` is a rough approximation: see the module
        docstring).
    n_samples : posterior draws for ``predictive="mc"`` and for the probabilities' standard
        deviations (``predict_proba(X, return_std=True)``).
    solver : ``"newton"`` (IRLS), ``"lbfgs"`` (L-BFGS to the MAP, from a subsample's MAP on
        many rows, then the one Hessian pass of the posterior, which Newton steps follow only
        if it finds the MAP short of ``tol``), or ``"auto"`` (Newton up to 32 parameters).
        Warm-started fits (the evidence iterations of ``alpha=None``) use Newton.
    max_iter : Newton (or L-BFGS) iterations per MAP fit.
    max_evidence_iter : fixed-point iterations for ``alpha=None``.
    tol : relative tolerance on the Newton step and on alpha (at least 10 machine epsilons of
        ``dtype``).
    chunk_size : rows per chunk of the pass over the data (default: a few MB per chunk).

    Attributes
    ----------
    classes_ : the labels. coef_ : (1, D) for two classes, else (K, D). intercept_ : (1,) or (K,).
    covariance_ : posterior covariance S_N of the flattened (class-major) parameters, each
        class's row being (w_1, ..., w_D, b).
    alpha_ : the prior precision used (float, or (D,) for ARD). log_evidence_ : the Laplace
        evidence (PRML 4.137). gamma_ : the effective number of parameters.
    n_iter_ : Newton/L-BFGS iterations of the last MAP fit; n_evidence_iter_.
    n_gradient_passes_, n_hessian_passes_ : full passes over the data in ``fit``, gradient-only
        (N P each) and with the Hessian (N P^2); passes over a subsample are not counted.
    """

    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="left"), "array-like", None],
        "ard": ["boolean"],
        "fit_intercept": ["boolean"],
        "intercept_precision": [Interval(Real, 0, None, closed="left")],
        "predictive": [StrOptions({"probit", "mc", "map"})],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions({"auto", "newton", "lbfgs"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_evidence_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, alpha=None, *, ard=False, fit_intercept=True, intercept_precision=0.0,
                 predictive="probit", n_samples=1000, solver="auto", max_iter=100,
                 max_evidence_iter=200, tol=1e-8, chunk_size=None, device="cpu",
                 dtype="float64", random_state=None):
        self.alpha = alpha
        self.ard = ard
        self.fit_intercept = fit_intercept
        self.intercept_precision = intercept_precision
        self.predictive = predictive
        self.n_samples = n_samples
        self.solver = solver
        self.max_iter = max_iter
        self.max_evidence_iter = max_evidence_iter
        self.tol = tol
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype
        self.random_state = random_state

    # -- data ----------------------------------------------------------------------------------
    def _data(self, X, y, sample_weight) -> "_LabelledRows":
        """The rows with their class codes and weights, and ``classes_`` set.

        ``X`` is an array with labels ``y``; or a ``.npy`` path / :class:`Batches` whose last
        column holds the labels (``y=None``), streamed in chunks.
        """
        if isinstance(X, (str, os.PathLike, Batches)):
            if y is not None or sample_weight is not None:
                raise ValueError("With a .npy file or Batches the labels are the last column of "
                                 "each row; pass y=None and no sample_weight.")
            return self._streamed(X)
        X, y = self._validate_X_y(X, y, y_numeric=False)
        check_classification_targets(y)
        sw = _check_sample_weight(sample_weight, X, dtype=self._numpy_dtype)
        if np.any(sw < 0) or sw.sum() <= 0:
            raise ValueError("sample_weight must be non-negative with a positive sum.")
        self.classes_ = distributed.union(y)  # every rank's: a shard may miss a class
        self._check_classes()
        codes = np.searchsorted(self.classes_, y)  # (N,) class indices
        (class_weight,) = distributed.all_reduce_sum(
            [torch.as_tensor(np.bincount(codes, weights=sw, minlength=len(self.classes_)))])
        weighted = np.flatnonzero(class_weight.numpy())
        if len(weighted) < 2:  # the MAP would push the one class's probability to 1
            only = self.classes_[weighted[0]].tolist()
            raise ValueError(f"only one class ({only!r}) has a positive sample_weight; "
                             "BayesianLogisticRegression needs at least 2 classes with weight.")
        side = np.stack([codes.astype(self._numpy_dtype), sw], axis=1)  # (N, 2)
        return _LabelledRows(self._source(X, len(self.classes_)), side=self._to_torch(side))

    def _source(self, rows, n_classes: int) -> DataSource:
        outputs = n_classes if n_classes > 2 else 1  # K' (1 when binary, or not yet known)
        return DataSource(rows, dtype=self._torch_dtype, device=self._torch_device,
                          chunk_size=self.chunk_size, chunk_elements=_CHUNK_ELEMENTS // outputs)

    def _streamed(self, X) -> "_LabelledRows":
        data = self._source(X, 0)  # the classes are read from it
        if data.n_features < 2:
            raise ValueError("Streamed data need at least one feature column and a last label column.")
        labels = torch.unique(torch.cat([torch.unique(c[:, -1]) for c in data]))
        self.classes_ = distributed.union(labels.cpu().numpy())  # every rank's labels
        labels = torch.as_tensor(self.classes_).to(labels)
        self._check_classes()
        self.n_features_in_ = data.n_features - 1
        return _LabelledRows(data, labels=labels)

    def _subsample(self, data: "_LabelledRows", step: int) -> "_LabelledRows":
        """Every ``step``-th row of this rank's array or file, held in memory."""
        if data.side is not None:
            rows = np.ascontiguousarray(data.source.data[::step])  # (N / step, D)
            return _LabelledRows(self._source(rows, len(self.classes_)),
                                 side=data.side[::step].clone())
        rows = data.source.take(np.arange(0, data.source.n_samples, step))  # (N / step, D + 1)
        return _LabelledRows(self._source(rows, len(self.classes_)), labels=data.labels)

    def _check_classes(self) -> None:
        if len(self.classes_) < 2:
            raise ValueError(f"BayesianLogisticRegression needs at least 2 classes; y has only one "
                             f"class ({self.classes_[0].tolist()!r}).")

    # -- the log-likelihood, one chunk at a time ---------------------------------------------------
    def _design(self, X: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """diag(scale) Phi (B, P) with phi(x) = (x, 1): the one copy of the rows a Hessian needs."""
        if not self.fit_intercept and scale is None:
            return X
        D = X.shape[1]
        Phi = X.new_empty(X.shape[0], D + int(self.fit_intercept))  # (B, P)
        if scale is None:
            Phi[:, :D] = X
        else:
            torch.mul(X, scale[:, None], out=Phi[:, :D])
        if self.fit_intercept:
            Phi[:, D] = 1.0 if scale is None else scale
        return Phi

    def _chunk_terms(self, data: "_LabelledRows", W: torch.Tensor, hessian: bool):
        """The function summing log-lik, its gradient (and Hessian) over one chunk at W (K', P).

        The activations and the gradient use the rows as they are, the intercept apart
        (a = X w + b, Phi^T r = (X^T r, sum r)): only a Hessian forms the (B, P) design.
        """
        D = self.n_features_in_
        Wx = W[:, :D].T.to(self._torch_dtype)  # (D, K')
        b = W[:, D].to(self._torch_dtype) if self.fit_intercept else None  # (K',)

        def terms(chunk, state=None):
            X, codes, w = data.split(chunk, state)  # (B, D), (B,), (B,)
            a = host_matmul(X, Wx)  # (B, K')  activations w^T phi (PRML 4.104)
            if b is not None:
                a += b
            if W.shape[0] == 1:
                a = a[:, 0]
                y = torch.sigmoid(a)  # (B,)
                # ln p(t|w) = sum_n t_n ln y_n + (1 - t_n) ln(1 - y_n), t_n the class code 0/1
                # (PRML 4.90): minus the cross-entropy, computed from the logits
                ll = -binary_cross_entropy_with_logits(a, codes, weight=w, reduction="sum")
                R = (codes - y).mul_(w)[:, None]  # (B, 1)  grad = Phi^T (t - y)  (PRML 4.91)
                stats = {"grad": self._design_t(R, X), "n": w.sum()}  # (1, P)
                if hessian:
                    # H = Phi^T R Phi, R = diag(y (1 - y))  (PRML 4.97-4.98), as (R^1/2 Phi)^T
                    # (R^1/2 Phi): one symmetric rank-B update
                    stats["hess"] = host_gram(self._design(X, (w * y * (1 - y)).sqrt()))
            else:
                log_y = torch.log_softmax(a, dim=1)  # (B, K)
                y = log_y.exp()
                T = torch.nn.functional.one_hot(codes.long(), W.shape[0]).to(a.dtype)  # (B, K)
                ll = w @ (T * log_y).sum(1)  # PRML 4.108
                stats = {"grad": self._design_t(w[:, None] * (T - y), X), "n": w.sum()}  # PRML 4.109
                if hessian:
                    # H_kj = sum_n y_nk (I_kj - y_nj) phi_n phi_n^T  (PRML 4.110)
                    Phi = self._design(X)  # (B, P)
                    wy = w[:, None] * y  # (B, K)
                    blocks = torch.einsum("bk,bp,bq->kpq", wy, Phi, Phi)  # (K, P, P)
                    root = (w.sqrt()[:, None] * y)[:, :, None] * Phi[:, None, :]  # (B, K, P)
                    root = root.reshape(X.shape[0], -1)  # (B, K P)
                    H = host_gram(root).neg_()
                    K, P = W.shape
                    H.view(K, P, K, P).diagonal(dim1=0, dim2=2).add_(blocks.permute(1, 2, 0))
                    stats["hess"] = H
            return stats, ll

        return terms

    def _design_t(self, R: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """R^T Phi (K', P) for R (B, K'), as (R^T X, sum_n R_n) without forming Phi."""
        RX = host_matmul(R.T, X)  # (K', D)
        return torch.cat([RX, R.sum(0)[:, None]], 1) if self.fit_intercept else RX

    def _pass(self, data: "_LabelledRows", W, hessian=True):
        """One pass over ``data`` at W: summed log-lik, gradient and (``hessian``) Hessian."""
        source = data.source
        # threads pay off from three chunks (the 22,000-row subsample of the n = 200,000
        # benchmark: 2 Hessian passes in 25 ms against 40 ms on one thread); smaller data run
        # in one thread (no pool start-up, no OpenMP team spinning on small tensors)
        parallel = source.n_samples is None or source.n_samples > 2 * source.chunk_size
        with torch_threads(self._data_threads if parallel else 1):
            stats, ll, n = accumulate(source, self._chunk_terms(data, W, hessian),
                                      parallel=parallel, states=data.states)
        data.passes["hessian" if hessian else "gradient"] += 1
        return stats, float(ll)

    # -- the MAP ----------------------------------------------------------------------------------
    def _prior_precision(self, alpha: torch.Tensor, shape) -> torch.Tensor:
        """Precision of every parameter (K', P): alpha per feature, then the intercept's."""
        K, P = shape
        prec = torch.empty(K, P, dtype=torch.float64, device=alpha.device)
        prec[:, : self.n_features_in_] = alpha
        if self.fit_intercept:
            prec[:, -1] = self.intercept_precision
        return prec

    def _posterior_precision(self, H: torch.Tensor, prec: torch.Tensor) -> torch.Tensor:
        """S_N^-1 = H + diag(alpha) (PRML 4.143), plus, for a softmax, the class-sum
        pin of every unidentified (zero-precision) column (see the module docstring)."""
        A = H + torch.diag(prec.reshape(-1))
        K, P = prec.shape
        if K > 1:
            free = (prec == 0).all(0).to(A.dtype)  # (P,)
            scale = H.diagonal().mean().clamp_min(1.0)
            A = A + scale * torch.kron(torch.ones(K, K, dtype=A.dtype, device=A.device),
                                       torch.diag(free))
        return A

    def _neg_log_posterior(self, ll, W, prec):
        return -ll + 0.5 * float((prec * W * W).sum())

    def _working_tol(self) -> float:
        """``tol``, or the working precision's floor (float32 rounds steps below ~1e-6)."""
        return max(self.tol, 10 * torch.finfo(self._torch_dtype).eps)

    def _fit_map(self, data, W, prec, warm=False):
        """Newton/IRLS (or L-BFGS) from W; returns (W_MAP, H, log-lik at W_MAP).

        A warm start (the previous MAP of an evidence iteration) goes to Newton at once: a
        step or two from there, each with the Hessian the posterior needs anyway, against
        L-BFGS rebuilding its curvature memory from nothing.
        """
        solver = self.solver
        if solver == "auto":
            solver = "newton" if W.numel() <= _NEWTON_MAX_PARAMS else "lbfgs"
        if solver == "lbfgs" and not warm:
            W, A0 = self._subsample_start(data, W, prec) or (W, None)
            W = self._lbfgs(data, W, prec, A0)
        W, stats, ll, converged = self._newton(data, W, prec, self._working_tol(), self.max_iter)
        if not converged:
            warnings.warn(f"Newton's method did not converge in max_iter={self.max_iter} "
                          f"iterations (tol={self.tol}); increase max_iter.", ConvergenceWarning,
                          stacklevel=3)
        return W, stats["hess"], ll

    def _newton(self, data, W, prec, tol, max_iter):
        """Newton/IRLS steps from W until the step is below ``tol`` (relative to |W|); returns
        (W, the pass's statistics at W (with its Hessian), log-lik at W, converged)."""
        stats, ll = self._pass(data, W)
        unidentified = bool((prec[:, : self.n_features_in_] == 0).any())
        for self.n_iter_ in range(1, max_iter + 1):
            f = self._neg_log_posterior(ll, W, prec)
            A = self._posterior_precision(stats["hess"], prec)
            g = stats["grad"] - prec * W  # gradient of the log posterior (K', P)
            # Newton step  w_new = w + (H + A0)^{-1} grad  (PRML 4.92, 4.99)
            L, info = torch.linalg.cholesky_ex(A)
            if info:
                step = torch.linalg.lstsq(A, g.reshape(-1, 1)).solution.reshape(W.shape)
            else:
                step = torch.cholesky_solve(g.reshape(-1, 1), L).reshape(W.shape)
            decrement = float((g * step).sum())  # Newton decrement lambda^2
            # f sums the rows at the working precision: a predicted decrease lambda^2 / 2
            # below its rounding is one no line search can confirm (float32 stalls there)
            rounding = torch.finfo(self._torch_dtype).eps * abs(f)
            if (float(step.abs().max()) <= tol * (1 + float(W.abs().max()))
                    or decrement < 1e-24 or decrement <= 2 * rounding):
                return W, stats, ll, True
            t = 1.0
            while t >= 1e-10:  # backtracking (Armijo) line search on the log posterior
                W_new = W + t * step
                stats_new, ll_new = self._pass(data, W_new)
                f_new = self._neg_log_posterior(ll_new, W_new, prec)
                if f_new < f and f_new <= f - 1e-4 * t * decrement:
                    break
                t /= 2
            else:  # no step along the Newton direction lowers f: W is optimal to f's rounding
                return W, stats, ll, True
            W, stats, ll = W_new, stats_new, ll_new
            if unidentified and -ll <= 1e-9 * float(stats["n"]):
                raise ValueError(
                    "The classes are linearly separable, so with alpha=0 the MAP does not exist "
                    "(the likelihood keeps growing as the weights grow without bound). Set "
                    "alpha > 0, or alpha=None to learn it from the evidence.")
        return W, stats, ll, False

    def _subsample_start(self, data, W, prec, rows_per_param=_SUBSAMPLE_ROWS_PER_PARAM):
        """A start near the MAP and the curvature there, from every k-th row: (W_0, A_0) or
        None (streamed Batches, too few rows, or an improper prior on a weight).

        The MAP of n subsampled rows, their log-likelihood scaled by N / n (equivalently the
        prior by n / N), lies within the sampling error ~ (P / n)^1/2 of the full MAP, and
        its posterior precision A_0 = (H_n + (n / N) A_prior) N / n is the full one to the
        same relative error: L-BFGS started there with A_0 as its initial Hessian then
        converges at about that rate per full pass (n = 200 P: ~0.07). Newton on the
        subsample starts from its own subsample's MAP (n / 8 rows, while that keeps at least
        ``_SUBSAMPLE_MIN_ROWS_PER_PARAM``) and stops at a step of ``_SUBSAMPLE_TOL``, inside
        the sampling error. Every rank takes the same k (from the row count summed over the
        ranks), so the subsample's passes all-reduce like the full ones.
        """
        source = data.source
        if (source.is_batches or rows_per_param < _SUBSAMPLE_MIN_ROWS_PER_PARAM
                or not bool((prec[:, : self.n_features_in_] > 0).all())):
            return None
        n_local = torch.tensor(float(source.n_samples), dtype=torch.float64, device=W.device)
        n_rows = int(distributed.all_reduce_sum([n_local])[0])
        target = rows_per_param * W.numel()
        if n_rows < _SUBSAMPLE_MIN_FRACTION_INV * target:
            return None
        step = n_rows // target
        sub, sub_prec = self._subsample(data, step), prec / step
        W_sub, _ = self._subsample_start(sub, W, sub_prec, rows_per_param // 8) or (W, None)
        W0, stats, _, converged = self._newton(sub, W_sub, sub_prec, _SUBSAMPLE_TOL,
                                               _SUBSAMPLE_MAX_ITER)
        if not converged:  # e.g. a subsample holding one class, with a flat intercept
            return None
        return W0, self._posterior_precision(stats["hess"], sub_prec) * step

    def _objective(self, data, prec, shape):
        """f(theta) and its gradient for L-BFGS: the negative log posterior of the flattened
        parameters theta (K' P,), one gradient-only pass per call."""
        free = (prec == 0).all(0).to(torch.float64)  # (P,) a softmax's unidentified columns

        def f_and_grad(theta):
            Wt = torch.as_tensor(theta, dtype=torch.float64, device=prec.device).reshape(shape)
            stats, ll = self._pass(data, Wt.to(self._torch_dtype), hessian=False)
            g = -(stats["grad"] - prec * Wt)
            if shape[0] > 1:  # pin the class sum of unidentified columns (centred solution)
                s = (Wt * free).sum(0)
                g = g + s * free
                extra = 0.5 * float((s * s).sum())
            else:
                extra = 0.0
            return self._neg_log_posterior(ll, Wt, prec) + extra, g.reshape(-1).cpu().numpy()

        return f_and_grad

    def _lbfgs(self, data, W, prec, A0=None):
        """L-BFGS on the negative log posterior, one gradient-only pass per evaluation, to
        where its estimate of the Newton step is below ``tol``: the Hessian pass that follows
        (needed for the posterior) then usually confirms the MAP at once, and gradient passes
        cost N P against a Hessian pass's N P^2.

        From zero (``A0`` None) scipy's L-BFGS-B, whose Newton-step estimate is the last
        step's curvature (Barzilai-Borwein). From a subsample's start (:meth:`_subsample_start`)
        the two-loop recursion with A0 as the initial Hessian (Nocedal & Wright 2006,
        Algorithm 7.4), whose direction is itself the Newton-step estimate.
        """
        tol = self._working_tol()
        f_and_grad = self._objective(data, prec, W.shape)
        theta = W.reshape(-1).cpu().numpy()
        if A0 is not None:
            theta = self._two_loop_lbfgs(f_and_grad, theta, A0.cpu().numpy(), tol)
            return torch.as_tensor(theta, dtype=torch.float64, device=W.device).reshape(W.shape)
        last, previous = {}, []

        def recorded(x):
            f, g = f_and_grad(x)
            last["x"], last["g"] = x.copy(), g
            return f, g

        def stop_near_map(intermediate_result):
            x = intermediate_result.x
            if not np.array_equal(x, last["x"]):
                return
            if previous:
                # The Newton step H^-1 g, with 1/H the curvature of the last step along it
                # (Barzilai-Borwein: s^T y / y^T y)
                s, y = x - previous[0], last["g"] - previous[1]
                yy = float(y @ y)
                step = float(s @ y) / yy * np.abs(last["g"]).max() if yy > 0 else 0.0
                if step <= tol * (1 + np.abs(x).max()):
                    raise StopIteration
            previous[:] = [x.copy(), last["g"]]

        eps = float(torch.finfo(self._torch_dtype).eps)
        result = scipy.optimize.minimize(recorded, theta, jac=True, method="L-BFGS-B",
                                         callback=stop_near_map,
                                         options=dict(maxiter=10 * self.max_iter, gtol=0.0,
                                                      ftol=10 * eps))
        return torch.as_tensor(result.x, dtype=torch.float64, device=W.device).reshape(W.shape)

    def _two_loop_lbfgs(self, f_and_grad, x, A0, tol, memory=10):
        """L-BFGS from x with initial Hessian A0 (Nocedal & Wright 2006, Algorithms 7.4-7.5,
        H_0 = A0^-1 for every k), unit steps backtracked (Armijo) when f does not fall.

        Its direction d = -H_k g estimates the Newton step, and each full step shrinks it by
        about rho = |d_k| / |d_{k-1}| (max-norms). It returns x + d, without the gradient pass
        there (the Hessian pass that follows makes one), once |d| <= ``tol`` (relative to |x|)
        or |d| rho <= ``tol`` / 2: the Newton step there is then expected at about |d| rho,
        inside ``tol``, and the Hessian pass checks it. It returns x where the predicted
        decrease -g^T d / 2 is below the rounding of f (float32 resolves no smaller step), or
        where no step along d lowers f.
        """
        factor = scipy.linalg.cho_factor(A0)
        eps = float(torch.finfo(self._torch_dtype).eps)
        f, g = f_and_grad(x)
        pairs: deque = deque(maxlen=memory)  # (s, y, 1 / y^T s)
        previous = None  # |d| of the last iteration
        for _ in range(10 * self.max_iter):
            # two-loop recursion: d = -H_k g  (Nocedal & Wright Algorithm 7.4)
            q, coeffs = g.copy(), []
            for s, y, rho in reversed(pairs):
                a = rho * (s @ q)
                q -= a * y
                coeffs.append(a)
            r = scipy.linalg.cho_solve(factor, q)
            for (s, y, rho), a in zip(pairs, reversed(coeffs)):
                r += s * (a - rho * (y @ r))
            d = -r
            slope = float(g @ d)
            # the predicted decrease -g^T d / 2 below f's rounding (as in _newton)
            if slope >= 0 or -slope <= 2 * eps * abs(f):
                return x
            size = np.abs(d).max() / (1 + np.abs(x).max())
            if size <= tol or (previous is not None and size * size / previous <= tol / 2):
                return x + d
            previous = size
            t = 1.0
            while t >= 1e-10:  # backtracking (Armijo) line search
                x_new = x + t * d
                f_new, g_new = f_and_grad(x_new)
                if f_new <= f + 1e-4 * t * slope:
                    break
                t /= 2
            else:
                return x
            s, y = x_new - x, g_new - g
            if s @ y > 0:  # a curvature pair keeps H_k positive definite
                pairs.append((s, y, 1.0 / float(s @ y)))
            x, f, g = x_new, f_new, g_new
        return x

    # -- fitting -----------------------------------------------------------------------------------
    def fit(self, X, y=None, sample_weight=None):
        """Find the MAP, the Laplace posterior and (alpha=None) the evidence-maximising alpha.

        ``X`` (n, d) with labels ``y`` (n,); or a ``.npy`` path or :class:`Batches` of rows
        whose last column is the label, read in chunks on every pass.
        """
        self._validate_params()
        if self.ard and self.alpha is not None:
            raise ValueError("ard=True learns one prior precision per feature from the evidence, "
                             "so it needs alpha=None; to fix one precision per feature instead, "
                             "pass alpha as an array of n_features values.")
        data = self._data(X, y, sample_weight)
        D, K = self.n_features_in_, len(self.classes_)
        n_out = 1 if K == 2 else K
        P = D + int(self.fit_intercept)
        # Many rows are split over worker threads by the data path; small data run in one
        # thread (no pool start-up). The P x P algebra between passes runs in one thread up
        # to _THREADED_ALGEBRA_PARAMS parameters: MKL's threads on matrices that small only
        # wait for each other (a 101 x 101 Cholesky inverse took 0.2 s on 2 busy cores, 0.3 ms
        # on one).
        n_rows = data.source.n_samples
        small = n_rows is not None and n_rows * P < 2**22
        self._data_threads = 1 if small else torch.get_num_threads()
        with torch_threads(1 if small or n_out * P <= _THREADED_ALGEBRA_PARAMS
                           else torch.get_num_threads()):
            self._fit(data, n_out, P)
        return self

    def _fit(self, data, n_out, P):
        D = self.n_features_in_
        dev = self._torch_device
        alpha = self._initial_alpha(D, dev)
        W = torch.zeros(n_out, P, dtype=torch.float64, device=dev)
        self.n_evidence_iter_ = 0
        if self.alpha is not None:
            W, S, A, ll = self._posterior(data, W, alpha)
        else:
            alpha, W = self._mackay_fixed_point(data, W, alpha)
            if not self.ard:
                alpha, W = self._maximise_evidence(data, W, alpha)
            W, S, A, ll = self._posterior(data, W, alpha, warm=True)
        self._store(W, S, A, ll, self._prior_precision(alpha, W.shape), alpha)
        self.n_gradient_passes_ = data.passes["gradient"]
        self.n_hessian_passes_ = data.passes["hessian"]

    def _posterior(self, data, W, alpha, warm=False):
        """MAP from W (``warm``: a previous MAP) and the Laplace posterior at it:
        (W_MAP, S_N, S_N^-1, log-lik)."""
        prec = self._prior_precision(alpha, W.shape)
        W, H, ll = self._fit_map(data, W, prec, warm)
        A = self._posterior_precision(H, prec)
        L, info = torch.linalg.cholesky_ex(A)
        if info:
            raise ValueError("The posterior precision H + diag(alpha) is singular: some features "
                             "are collinear or constant, so with a zero prior precision their "
                             "weights are not identified. Set alpha > 0 (or alpha=None), or drop "
                             "the redundant features.")
        return W, torch.cholesky_inverse(L), A, ll

    def _mackay_fixed_point(self, data, W, alpha):
        """MacKay's updates alpha = gamma / |w_MAP|^2 alternated with MAP fits."""
        D = self.n_features_in_
        for self.n_evidence_iter_ in range(1, self.max_evidence_iter + 1):
            W, S, _, _ = self._posterior(data, W, alpha, warm=self.n_evidence_iter_ > 1)
            prec = self._prior_precision(alpha, W.shape)
            # gamma_j = 1 - alpha_j S_jj: how well the data determine each weight (PRML 3.91)
            gamma = (1 - prec * S.diagonal().reshape(W.shape))[:, :D]  # (K', D)
            m2 = W[:, :D] ** 2  # (K', D)
            if self.ard:
                # alpha_j = gamma_j / m_j^2, summed over the classes (MacKay 1992; PRML 7.87)
                new = gamma.sum(0) / m2.sum(0).clamp_min(1e-300)
                # a feature the data no longer inform (gamma_j ~ 0) is pruned at once (alpha_j
                # -> infinity, as the RVM does, Tipping 2001): its weight ~ 1/alpha_j is then
                # below the Newton step's tolerance and stops following alpha_j, so the update
                # cycled (alpha_j alpha_j' = gamma_j alpha_j / m_j^2 held) instead of growing
                new = torch.where(gamma.sum(0) < self.tol ** 0.5, _ALPHA_MAX, new)
            else:
                # alpha = gamma / m^T m  (PRML 3.92 for the Laplace evidence 4.137)
                new = gamma.sum() / m2.sum().clamp_min(1e-300)
            new = new.clamp(1e-12, _ALPHA_MAX)
            # pruned features (alpha -> infinity) creep up slowly: judge the others
            active = new < _ALPHA_MAX * 1e-4
            change = float((new / alpha - 1).abs()[active].max()) if active.any() else 0.0
            alpha = new
            if change < self.tol ** 0.5:
                return alpha, W
        warnings.warn(f"Evidence maximisation did not converge in max_evidence_iter="
                      f"{self.max_evidence_iter} iterations; increase it or fix alpha.",
                      ConvergenceWarning, stacklevel=3)
        return alpha, W

    def _maximise_evidence(self, data, W, alpha):
        """Polish the isotropic alpha on the Laplace evidence itself (PRML 4.137).

        The fixed point treats the Hessian as constant in alpha, while H depends on alpha
        through w_MAP; a bounded Brent search over ln alpha within a factor of 30 of the
        fixed point (warm-started MAP fits) finds the evidence's own maximum.
        """
        state = {"W": W}

        def neg_evidence(log_alpha):
            a = torch.as_tensor(math.exp(log_alpha), dtype=torch.float64, device=W.device)
            Wa, S, A, ll = self._posterior(data, state["W"], a, warm=True)
            state["W"] = Wa
            return -self._log_evidence(Wa, A, ll, self._prior_precision(a, Wa.shape))

        centre = math.log(float(alpha))
        result = scipy.optimize.minimize_scalar(neg_evidence, bounds=(centre - 3.4, centre + 3.4),
                                                method="bounded", options={"xatol": 1e-10})
        return torch.as_tensor(math.exp(result.x), dtype=torch.float64, device=W.device), state["W"]

    @staticmethod
    def _log_evidence(W, A, ll, prec) -> float:
        """ln p(D|alpha) ~= ln p(D|w_MAP) + ln p(w_MAP|alpha) + M/2 ln 2 pi - 1/2 ln|A| (PRML 4.137)."""
        penalised = prec > 0  # a flat prior contributes no density, only its 1/2 ln 2 pi
        log_prior = (0.5 * torch.log(prec[penalised]) - 0.5 * math.log(2 * math.pi)
                     - 0.5 * prec[penalised] * W[penalised] ** 2).sum()
        return float(ll + log_prior + 0.5 * W.numel() * math.log(2 * math.pi)
                     - 0.5 * torch.linalg.slogdet(A)[1])

    def _initial_alpha(self, D, dev) -> torch.Tensor:
        if self.alpha is None:
            return torch.ones(D if self.ard else (), dtype=torch.float64, device=dev)
        alpha = torch.as_tensor(np.asarray(self.alpha, dtype=np.float64), device=dev)
        if alpha.dim() > 1 or (alpha.dim() == 1 and alpha.shape[0] != D) or (alpha < 0).any():
            raise ValueError(f"alpha must be a non-negative number or an array of {D} "
                             f"non-negative precisions (one per feature); got shape {tuple(alpha.shape)}.")
        return alpha

    def _store(self, W, S, A, ll, prec, alpha) -> None:
        D = self.n_features_in_
        self.coef_ = self._to_numpy(W[:, :D].to(self._torch_dtype))
        self.intercept_ = (self._to_numpy(W[:, D].to(self._torch_dtype)) if self.fit_intercept
                           else np.zeros(W.shape[0], dtype=self._numpy_dtype))
        self.covariance_ = self._to_numpy(S.to(self._torch_dtype))
        self.alpha_ = float(alpha) if alpha.dim() == 0 else self._to_numpy(alpha)
        # gamma = sum_j (1 - alpha_j S_jj) over the weights
        self.gamma_ = float((1 - prec * S.diagonal().reshape(prec.shape))[:, :D].sum())
        self.log_evidence_ = self._log_evidence(W, A, ll, prec)
        self.log_likelihood_ = float(ll)

    # -- prediction ---------------------------------------------------------------------------------
    def _features(self, X) -> torch.Tensor:
        check_is_fitted(self)
        return self._design(self._to_torch(self._validate_X(X, reset=False)))  # (N, P)

    def _weights(self) -> torch.Tensor:
        W = self._to_torch(self.coef_)
        if self.fit_intercept:
            W = torch.cat([W, self._to_torch(self.intercept_)[:, None]], 1)
        return W  # (K', P)

    def decision_function(self, X):
        """The activations of the predictive probabilities: log-odds ln(p_1 / p_0) (n,) for two
        classes, ln p_k (n, K) otherwise; with ``predictive="map"`` these are w_MAP^T phi(x)
        (up to a per-row constant for K classes), with ``"probit"`` kappa(s^2) mu (PRML 4.155)."""
        log_p = np.log(self.predict_proba(X))
        return log_p[:, 1] - log_p[:, 0] if log_p.shape[1] == 2 else log_p

    def logit_moments(self, X, full_cov: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean (N, K') and variance (N, K') of the activations a = W phi(x), or
        with ``full_cov`` their covariance (N, K', K') across the classes.

        Cov(a_k, a_j) = phi^T S_N[k, j] phi (PRML 4.151-4.152 for one activation).
        """
        Phi = self._features(X)  # (N, P)
        W = self._weights()
        K, P = W.shape
        S = self._to_torch(self.covariance_).view(K, P, K, P)
        if full_cov:
            cov = torch.einsum("np,kpjq,nq->nkj", Phi, S, Phi)  # (N, K', K')
            return Phi @ W.T, (cov + cov.transpose(1, 2)) / 2
        var = torch.einsum("np,pqk,nq->nk", Phi, S.diagonal(dim1=0, dim2=2), Phi)
        return Phi @ W.T, var.clamp_min(0)

    def _posterior_draws(self, Phi, n_samples, random_state=None) -> torch.Tensor:
        """Class probabilities (N, S, K) under S weight draws from N(w_MAP, S_N)."""
        W = self._weights()
        gen = self._torch_generator(random_state)
        S = self._to_torch(self.covariance_)
        # S_N = root root^T: Cholesky, which (unlike eigenvectors, defined up to sign) moves
        # continuously with S_N; eigenvalues only if S_N is singular to working precision
        root, info = torch.linalg.cholesky_ex(S)
        if info:
            lam, V = torch.linalg.eigh(S)
            root = V * lam.clamp_min(0).sqrt()
        eps = torch.randn(n_samples, W.numel(), generator=gen, dtype=W.dtype, device=W.device)
        draws = W + (eps @ root.T).view(n_samples, *W.shape)  # (S, K', P)
        a = torch.einsum("np,skp->nsk", Phi, draws)  # (N, S, K')
        return logit_probs(a)

    def predict_dist(self, X, predictive: str | None = None):
        """Categorical over ``classes_`` (indices): probit-moderated, Monte-Carlo
        (:class:`~bayesdl.uncertainty.MonteCarloCategorical`) or MAP."""
        predictive = predictive or self.predictive
        if predictive == "mc":
            return MonteCarloCategorical(self._posterior_draws(self._features(X), self.n_samples))
        if predictive not in ("probit", "map"):
            raise ValueError(f"predictive must be 'probit', 'mc' or 'map', got {predictive!r}.")
        mean, cov = self.logit_moments(X, full_cov=predictive == "probit")
        if predictive == "map":
            return torch.distributions.Categorical(probs=logit_probs(mean))
        # p(C_1|x) ~= sigma(kappa(sigma_a^2) mu_a)  (PRML 4.155); pairwise for the softmax
        return torch.distributions.Categorical(probs=probit_probs(mean, cov))

    def predict_proba(self, X, return_std: bool = False):
        """Class probabilities (n, K); with ``return_std`` also their posterior standard
        deviations (n, K) over ``n_samples`` weight draws."""
        proba = self._to_numpy(self.predict_dist(X).probs)
        if not return_std:
            return proba
        draws = self._posterior_draws(self._features(X), self.n_samples)  # (N, S, K)
        return proba, self._to_numpy(draws.std(1))

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class under the predictive distribution."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.predictive == "mc" and self.random_state is None
        return tags


class _LabelledRows:
    """The rows of one fit with each row's class code and weight, read chunk by chunk.

    An array's rows are read in place (``source`` over X itself, no copy) and its codes and
    weights ``side`` (N, 2) are cut into the same chunks, handed to each chunk's terms as
    :func:`~bayesdl.core.em.accumulate`'s per-chunk ``states``. Streamed rows (a ``.npy``
    file or :class:`Batches`) carry their label in the last column: its index in the sorted
    ``labels`` is the code, with weight 1.
    """

    def __init__(self, source: DataSource, side: torch.Tensor | None = None,
                 labels: torch.Tensor | None = None):
        self.source, self.side, self.labels = source, side, labels
        self.states = None
        if side is not None:  # the array's chunks are rows [i c, (i + 1) c), c = chunk_size
            c = source.chunk_size
            self.states = [{"codes": side[i : i + c, 0], "weights": side[i : i + c, 1]}
                           for i in range(0, side.shape[0], c)]
        self.passes = {"gradient": 0, "hessian": 0}

    def split(self, chunk: torch.Tensor, state: dict | None = None):
        """(X (B, D), class codes (B,), weights (B,)) of one chunk."""
        if state is not None:
            return chunk, state["codes"], state["weights"]
        labels = self.labels.to(chunk)
        codes = torch.searchsorted(labels, chunk[:, -1].contiguous()).to(chunk)
        return chunk[:, :-1], codes, chunk.new_ones(chunk.shape[0])
