"""K-means: EM with hard assignments (PRML 9.1), on the sufficient-statistics engine.

The E-step assigns each row to its nearest centre (PRML 9.2) and sums, per centre, the
count and the sum of its rows; the M-step sets each centre to the mean of its rows
(PRML 9.4). The objective ``J = sum_n min_k |x_n - mu_k|^2`` (PRML 9.1) is the engine's bound
(as ``-J``). Squared distances come from one GEMM, ``|x|^2 - 2 x^T mu + |mu|^2``.

By default the E-step is Hamerly's exact acceleration of Lloyd (Hamerly 2010, "Making
k-means even faster"): each row keeps an upper bound ``u`` on the distance to its centre and a
lower bound ``l`` on the distance to every other centre. After an M-step the bounds are
loosened by how far the centres moved (triangle inequality), and a row whose ``u`` is still
below ``max(l, s(a))`` (``s(k)``: half the distance from centre ``k`` to its nearest other
centre) keeps its centre without any distance being computed; only the other rows go through
the GEMM. Once the centres settle that is a few percent of the rows. The test carries a margin
for the rounding error of the GEMM distances, so a row is kept only where Lloyd's computed
argmin would keep it too: the labels, centres and J are Lloyd's.

The bounds (4 numbers per row) live in the per-chunk ``state`` of the EM engine
(:meth:`KMeans._e_step_stats_stateful`): chunk ``i`` of an array or ``.npy`` file is the same
rows on every pass, and on each ``torch.distributed`` rank its own shard, so each chunk's
bounds travel with it; they are dropped after each initialisation. :class:`Batches` may change
between passes, so they are always clustered by plain Lloyd.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin,
                          TransformerMixin)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state

from .._base import TorchEstimatorMixin
from ..core.em import Candidates, DataSource, EMMixin, Rows, accumulate, data_source

INIT_MAX_ROWS = 100_000  # rows k-means++ looks at when the data are larger (uniform subset)
CHUNK_ELEMENTS = 2**21  # default chunk: 65536 rows of 32 features (split in _BLOCK_ROWS blocks)


def _squared_distances(X: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(N, K) ``|x_n - mu_k|^2 = |x_n|^2 - 2 x_n^T mu_k + |mu_k|^2``, clamped at 0."""
    d2 = torch.addmm((centers * centers).sum(1), X, centers.T, alpha=-2.0)
    return (d2 + (X * X).sum(1, keepdim=True)).clamp_min_(0.0)


# Rows per distance block: the (rows, K) block stays in cache between the GEMM and argmin.
_BLOCK_ROWS = 2048


def _nearest(X: torch.Tensor, centers: torch.Tensor, *, second: bool = False):
    """``(min_k |x_n - mu_k|^2, argmin_k)`` per row, (N,) and (N,); with ``second``, also
    the second-smallest squared distance (N,) (``inf`` when K = 1).

    The rows are taken ``_BLOCK_ROWS`` at a time so each (B, K) block of ``|mu_k|^2 -
    2 x^T mu_k`` stays in cache for its argmin (``|x|^2`` does not change the argmin and is
    added to the minima only). On CPU the block runs in numpy (zero-copy views): its
    OpenBLAS GEMM is about 25% and its SIMD argmin about 7 times faster than torch's here.
    """
    c2 = (centers * centers).sum(1)  # (K,)
    minus_2_centers_t = (-2.0 * centers).T.contiguous()  # (D, K)
    labels = torch.empty(X.shape[0], dtype=torch.int64, device=X.device)
    min_d2 = torch.empty(X.shape[0], dtype=X.dtype, device=X.device)
    next_d2 = torch.empty_like(min_d2) if second else None
    cpu = X.device.type == "cpu"
    if cpu:
        Xb, Wb, cb, lb, mb = (t.numpy() for t in (X, minus_2_centers_t, c2, labels, min_d2))
        nb = next_d2.numpy() if second else None
    for start in range(0, X.shape[0], _BLOCK_ROWS):
        rows = slice(start, start + _BLOCK_ROWS)
        if cpu:
            d2 = Xb[rows] @ Wb
            d2 += cb  # (B, K)
            lb[rows] = d2.argmin(1)  # the first minimum, as torch's
            mb[rows] = np.take_along_axis(d2, lb[rows, None], 1)[:, 0]
            if second:  # (argmin and take: numpy's min over short rows is much slower)
                np.put_along_axis(d2, lb[rows, None], np.inf, 1)
                nb[rows] = np.take_along_axis(d2, d2.argmin(1)[:, None], 1)[:, 0]
        else:
            d2 = torch.addmm(c2, X[rows], minus_2_centers_t)  # (B, K)
            labels[rows] = d2.argmin(1)
            min_d2[rows] = d2.gather(1, labels[rows, None]).squeeze(1)
            if second:
                next_d2[rows] = d2.scatter_(1, labels[rows, None], math.inf).amin(1)
    x2 = (X * X).sum(1)  # (N,)
    min_d2 = (min_d2 + x2).clamp_min_(0.0)
    if second:
        return min_d2, labels, (next_d2 + x2).clamp_min_(0.0)
    return min_d2, labels


def kmeans_plusplus(X, n_clusters: int, *, random_state=None, n_local_trials=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007), as scikit-learn does it.

    The first centre is a uniformly random row; each next one is the best (lowest resulting
    potential) of ``2 + log K`` rows drawn with probability proportional to their squared
    distance to the nearest centre chosen so far. ``X`` is an (N, D) tensor or array.
    Returns ``(centers (K, D), indices (K,))``.
    """
    X = torch.as_tensor(X)
    n = X.shape[0]
    rng = check_random_state(random_state)
    trials = n_local_trials or 2 + int(math.log(n_clusters))
    indices = [int(rng.choice(n, p=np.full(n, 1.0 / n)))]  # the same draw as scikit-learn
    closest = _squared_distances(X, X[indices]).squeeze(1)  # (N,)
    potential = closest.sum()
    for _ in range(1, n_clusters):
        # Sample candidates with probability D(x)^2 / sum D^2 by inverting the cumulative sum.
        draws = torch.as_tensor(rng.uniform(size=trials), dtype=X.dtype, device=X.device)
        cumulative = torch.cumsum(closest.to(torch.float64), 0).to(X.dtype)
        candidates = torch.searchsorted(cumulative, draws * potential).clamp_(max=n - 1)
        d2 = torch.minimum(closest[:, None], _squared_distances(X, X[candidates]))  # (N, T)
        best = int(torch.argmin(d2.sum(0)))
        closest, potential = d2[:, best], d2[:, best].sum()
        indices.append(int(candidates[best]))
    indices = torch.as_tensor(indices, device=X.device)
    return X[indices].clone(), indices


class KMeans(ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, EMMixin,
             TorchEstimatorMixin, BaseEstimator):
    """K-means clustering by Lloyd's algorithm (PRML 9.1) in torch.

    Parameters follow scikit-learn (``n_clusters``, ``init`` = "k-means++" / "random" / an
    (K, D) array, ``n_init``, ``max_iter``, ``tol`` relative to the mean feature variance,
    ``random_state``, ``verbose``) plus ``warm_start``, ``chunk_size``, ``device``, ``dtype``
    and ``algorithm``: "hamerly" (Lloyd's iterations computed with Hamerly's distance bounds,
    see the module docstring; the same result, much faster), "lloyd" (every distance every
    iteration) or "auto" (the default: "hamerly" on arrays, "lloyd" on ``.npy`` files, whose
    fits keep memory bounded by the chunk size while the bounds take 4 numbers per row;
    :class:`~bayesdl.core.em.Batches` are always fitted by "lloyd").
    ``fit`` takes an array, a ``.npy`` path (memory-mapped) or
    :class:`bayesdl.core.em.Batches`; ``partial_fit`` updates the centres from one mini-batch
    (each centre the running mean of the rows ever assigned to it, as MiniBatchKMeans).
    An empty cluster is moved to the row farthest from its centre, never left as NaN.

    Attributes: ``cluster_centers_``, ``labels_``, ``inertia_`` (J, PRML 9.1), ``n_iter_``,
    ``converged_``, ``lower_bound_`` (= -J of the last E-step), ``lower_bounds_``,
    ``counts_`` (rows per centre; for ``partial_fit``).
    """

    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"k-means++", "random"}), "array-like"],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "algorithm": [StrOptions({"auto", "lloyd", "hamerly"})],
    }

    def __init__(self, n_clusters=8, *, init="k-means++", n_init=1, max_iter=300, tol=1e-4,
                 random_state=None, warm_start=False, verbose=0, chunk_size=None,
                 device="cpu", dtype="float64", algorithm="auto"):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype
        self.algorithm = algorithm

    # -- data -------------------------------------------------------------------------------
    def _data_source(self, X, *, reset: bool) -> DataSource:
        data = data_source(self, X, reset=reset, chunk_elements=CHUNK_ELEMENTS)
        if reset and data.n_samples < self.n_clusters:
            raise ValueError(f"n_samples={data.n_samples} should be >= n_clusters="
                             f"{self.n_clusters}: use fewer clusters or more data.")
        return data

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Cluster ``X`` (array, ``.npy`` path or Batches); returns ``self``."""
        self._validate_params()
        return self._fit_source(self._data_source(X, reset=True))

    def _fit_source(self, data: DataSource):
        if not hasattr(self, "n_features_in_"):  # called directly by GaussianMixture's init
            self.n_features_in_ = data.n_features
        self._hamerly = self.algorithm == "hamerly" or (
            self.algorithm == "auto" and data.path is None)
        self._fit_data = data  # for the M-step's rare pass to reseed empty clusters
        try:
            self._fit_em(data)
        finally:
            del self._fit_data
        # A final E-step, so labels_ and inertia_ belong to the final centres.

        def final(chunk):
            min_d2, labels = _nearest(chunk, self._centers)
            counts = torch.bincount(labels, minlength=self.n_clusters)
            return {"counts": counts, "labels": Rows(labels)}, min_d2.sum()

        stats, inertia, _ = accumulate(data, final)
        self.labels_ = self._to_numpy(stats["labels"].values)
        self.inertia_ = float(inertia)
        self.counts_ = self._to_numpy(stats["counts"])
        return self

    def _initialize(self, data, random_state):
        K = self.n_clusters
        # Convergence tolerance relative to the data scale, as scikit-learn: tol * mean var.
        moments, _, n = accumulate(data, lambda c: ({"s1": c.sum(0), "s2": (c * c).sum(0)},
                                                    c.new_zeros(())))
        variance = moments["s2"] / n - (moments["s1"] / n) ** 2
        self._tol_abs = float(variance.mean()) * self.tol
        if isinstance(self.init, str) and self.init == "k-means++":
            centers, _ = kmeans_plusplus(data.head(INIT_MAX_ROWS, random_state), K,
                                         random_state=random_state)
        elif isinstance(self.init, str):  # random rows
            centers = data.take(random_state.choice(data.n_samples, size=K, replace=False))
        else:
            centers = self._to_torch(np.asarray(self.init, dtype=np.float64))
            if centers.shape != (K, self.n_features_in_):
                raise ValueError(f"init must have shape ({K}, {self.n_features_in_}); "
                                 f"got {tuple(centers.shape)}.")
        self._set_parameters((self._to_numpy(centers),))

    def _e_step_stats(self, X):
        """PRML 9.2: nearest centre of each row; counts, sums and J of the chunk."""
        min_d2, labels = _nearest(X, self._centers)  # (N,), (N,)
        return self._cluster_sums(X, labels), min_d2.sum()

    def _cluster_sums(self, X, labels) -> dict:
        K = self.n_clusters
        counts = torch.bincount(labels, minlength=K).to(X.dtype)  # (K,)
        sums = X.new_zeros(K, X.shape[1]).index_add_(0, labels, X)  # (K, D)
        return {"counts": counts, "sums": sums}

    def _e_step_stats_stateful(self, X, state):
        """The E-step of :meth:`_e_step_stats` by Hamerly's algorithm (Hamerly 2010, Alg. 2).

        ``state`` (this chunk's, kept by the EM engine across iterations) holds the
        ``centers`` of the previous E-step, and per row the ``labels``, the bounds ``upper``
        and ``lower`` and ``x2 = |x_n|^2``, all (N,); and the chunk's statistics ``counts``
        (K,) and ``sums`` (K, D), which are updated by the rows that changed centre only, so
        an iteration reads just the bounds and the few rows whose bounds fail, not the data.
        """
        if not self._hamerly:
            return self._e_step_stats(X)
        C = self._centers
        eps = torch.finfo(X.dtype).eps
        D = X.shape[1]
        first = not state  # the first E-step of this run: every row
        if first:
            x2 = (X * X).sum(1)  # (N,)
            state.update(x2=x2, x2_sum=x2.sum(dtype=torch.float64),
                         labels=torch.empty_like(x2, dtype=torch.int64),
                         upper=torch.empty_like(x2), lower=torch.empty_like(x2))
        labels, upper, lower, x2 = (state[k] for k in ("labels", "upper", "lower", "x2"))
        # |fl(d^2) - d^2| <= err_n for the GEMM distances |x|^2 - 2 x^T mu + |mu|^2: a row is
        # skipped only if Lloyd's rounded distances would give it the same centre.
        err = (2 * (D + 3) * eps) * (x2 + self._max_center_norm2)  # (N,)
        if not first:
            # Hamerly's update after the centres moved by delta_k = |mu_k - mu'_k|:
            # u_n += delta_a(n), l_n -= max_{j != a(n)} delta_j (rounded outward).
            delta = (C - state["centers"]).square().sum(1).sqrt() * (1 + (D + 4) * eps)  # (K,)
            top = torch.topk(delta, min(2, delta.shape[0]))
            other = torch.where(labels == top.indices[0], top.values[-1], top.values[0])  # (N,)
            upper.add_(delta[labels]).mul_(1 + 4 * eps)
            lower.sub_(other).clamp_min_(0.0).mul_(1 - 4 * eps)
            # Row n keeps its centre if every other centre is farther by more than the
            # rounding: u^2 + 2 err <= max(s(a), l)^2 (Hamerly's test u <= max(s(a), l)).
            bound = torch.maximum(self._half_gaps[labels], lower).square_()  # (N,)
            stale = torch.nonzero(upper.square() + 2 * err > bound).squeeze(1)
            # Tighten u to the exact distance to the assigned centre, then test again.
            exact = (X[stale] - C[labels[stale]]).square_().sum(1).sqrt_() * (1 + (D + 4) * eps)
            upper[stale] = exact
            stale = stale[exact.square() + 2 * err[stale] > bound[stale]]
        else:
            stale = slice(None)  # every row
        # The failing rows: both nearest centres from the GEMM, bounds widened by the rounding.
        rows = X[stale]  # (M, D)
        min_d2, new_labels, next_d2 = _nearest(rows, C, second=True)
        old_labels = None if first else labels[stale]  # (M,), a copy
        labels[stale] = new_labels
        upper[stale] = (min_d2 + err[stale]).sqrt_().mul_(1 + 2 * eps)
        lower[stale] = (next_d2 - err[stale]).clamp_min_(0.0).sqrt_().mul_(1 - 2 * eps)
        # The chunk's statistics, kept in float64 (whatever the dtype) so that the updates
        # below add no drift beyond float64 rounding.
        if first:
            state.update(self._cluster_sums(X.double(), labels))
        else:  # move the rows that changed centre from their old centre's sums to the new
            moved = new_labels != old_labels
            rows = rows[moved].double()
            old_labels, new_labels = old_labels[moved], new_labels[moved]
            state["sums"].index_add_(0, new_labels, rows).index_add_(0, old_labels, rows,
                                                                     alpha=-1)
            ones = torch.ones_like(new_labels, dtype=torch.float64)
            state["counts"].index_add_(0, new_labels, ones).index_add_(0, old_labels, -ones)
        state["centers"] = C
        counts, sums, C = state["counts"].clone(), state["sums"].clone(), C.double()
        # J = sum_n |x_n|^2 - 2 sum_k mu_k^T S_k + sum_k N_k |mu_k|^2, with S_k, N_k the sum
        # and count of the rows assigned to k: no per-row distance needed.
        J = state["x2_sum"] - 2.0 * (sums * C).sum() + counts @ (C * C).sum(1)
        return {"counts": counts, "sums": sums}, J

    def _compute_lower_bound(self, stats, log_lik_sum, n_samples):
        return -float(log_lik_sum)  # -J (PRML 9.1) before this M-step

    def _m_step(self, stats):
        """PRML 9.4: each centre becomes the mean of its rows; empty ones are relocated."""
        counts, sums = stats["counts"], stats["sums"]
        centers = sums / counts.clamp_min(1.0)[:, None]
        empty = torch.nonzero(counts == 0).reshape(-1)
        if empty.numel():  # rare: one more pass finds the rows farthest from their centres
            far = self._farthest_rows(empty.numel()).to(centers)
            centers[empty] = far
        old = self._centers.to(torch.float64)
        self._center_shift = float(((centers - old) ** 2).sum())
        self._set_parameters((self._to_numpy(centers.to(self._torch_dtype)),))

    def _farthest_rows(self, m: int) -> torch.Tensor:
        """The ``m`` rows (m, D) of the data being fitted farthest from their nearest centre."""
        def far(chunk):
            min_d2, _ = _nearest(chunk, self._centers)
            return {"far": Candidates.top(min_d2, chunk, m)}, chunk.new_zeros(())

        return accumulate(self._fit_data, far)[0]["far"].rows

    def _converged(self, change: float) -> bool:
        # scikit-learn's criterion: total squared centre shift below tol * mean variance.
        return self._center_shift <= self._tol_abs

    def _get_parameters(self):
        return (self.cluster_centers_,)

    def _set_parameters(self, params):
        (self.cluster_centers_,) = params
        C = self._centers = self._to_torch(self.cluster_centers_)
        if getattr(self, "_hamerly", False):
            # For Hamerly's test: s(k) = min_{j != k} |mu_k - mu_j| / 2 (rounded down), from
            # differences (no GEMM rounding) _BLOCK_ROWS centres at a time, and max_k |mu_k|^2
            # (for the rounding error of the GEMM distances).
            K, D = C.shape
            gaps = torch.empty(K, dtype=C.dtype, device=C.device)  # (K,)
            for start in range(0, K, _BLOCK_ROWS):
                block = torch.cdist(C[start : start + _BLOCK_ROWS], C,
                                    compute_mode="donot_use_mm_for_euclid_dist")  # (B, K)
                block.diagonal(start).fill_(math.inf)  # not the centre itself
                gaps[start : start + _BLOCK_ROWS] = block.amin(1)
            self._half_gaps = gaps * (0.5 * (1 - (D + 4) * torch.finfo(C.dtype).eps))
            self._max_center_norm2 = float((C * C).sum(1).max())

    # -- mini-batch -------------------------------------------------------------------------
    def partial_fit(self, X, y=None):
        """Update the centres with one mini-batch (MiniBatchKMeans' running means)."""
        first = not hasattr(self, "cluster_centers_")
        if first:
            self._validate_params()
        data = self._data_source(X, reset=first)
        if first:
            centers, _ = kmeans_plusplus(data.head(INIT_MAX_ROWS, self.random_state),
                                         self.n_clusters, random_state=self.random_state)
            self._set_parameters((self._to_numpy(centers),))
            self.counts_ = np.zeros(self.n_clusters)
        stats, inertia, _ = accumulate(data, self._e_step_stats)
        counts = torch.as_tensor(self.counts_, dtype=torch.float64) + stats["counts"].cpu()
        # mu_k <- (n_k mu_k + sum of the batch's rows in k) / (n_k + batch count of k)
        old = torch.as_tensor(self.cluster_centers_, dtype=torch.float64)
        new = (old * torch.as_tensor(self.counts_)[:, None] + stats["sums"].cpu()) \
            / counts.clamp_min(1.0)[:, None]
        centers = torch.where((counts > 0)[:, None], new, old)
        self.counts_ = counts.numpy()
        self._set_parameters((centers.to(self._torch_dtype).numpy(),))
        self.inertia_ = float(inertia)
        self.n_iter_ = getattr(self, "n_iter_", 0) + 1
        return self

    # -- prediction -------------------------------------------------------------------------
    def _distances(self, X) -> torch.Tensor:
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        centers = self._to_torch(self.cluster_centers_)
        data = DataSource(X, dtype=self._torch_dtype, device=self._torch_device,
                          chunk_size=self.chunk_size, chunk_elements=CHUNK_ELEMENTS)
        return torch.cat([_squared_distances(c, centers) for c in data])  # (N, K)

    def predict(self, X):
        """Index of the nearest centre of each row (N,)."""
        return self._to_numpy(self._distances(X).argmin(1))

    @property
    def _n_features_out(self) -> int:
        """K output columns of ``transform``, named ``kmeans0..`` as in scikit-learn."""
        return self.cluster_centers_.shape[0]

    def transform(self, X):
        """Euclidean distances to every centre (N, K)."""
        return self._to_numpy(self._distances(X).sqrt())

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_

    def score(self, X, y=None):
        """``-J`` on ``X``: minus the sum of squared distances to the nearest centre."""
        return -float(self._distances(X).amin(1).sum())
