"""K-means: EM with hard assignments (PRML 9.1), on the sufficient-statistics engine.

The E-step assigns each row to its nearest centre (PRML 9.2) and sums, per centre, the
count and the sum of its rows; the M-step sets each centre to the mean of its rows
(PRML 9.4). The objective ``J = sum_n min_k |x_n - mu_k|^2`` (PRML 9.1) is the engine's bound
(as ``-J``). Squared distances come from one GEMM, ``|x|^2 - 2 x^T mu + |mu|^2``, whose
rounding error is about ``eps (|x|^2 + |mu|^2)``: on data far from the origin (offsets of 1e6
and more) it cancels catastrophically, so rows and centres are first centred on the data
mean (computed in the first pass over the data, all-reduced across ranks), as scikit-learn
centres X. With ``n_init > 1`` the runs are ranked by the inertia of their final centres
(the engine's final-bound pass), as scikit-learn ranks them.

By default the E-step is Hamerly's exact acceleration of Lloyd (Hamerly 2010, "Making
k-means even faster"): each row keeps an upper bound ``u`` on the distance to its centre and a
lower bound ``l`` on the distance to every other centre. After an M-step the bounds are
loosened by how far the centres moved (triangle inequality), and a row whose ``u`` is still
below ``max(l, s(a))`` (``s(k)``: half the distance from centre ``k`` to its nearest other
centre) keeps its centre without any distance being computed; only the other rows go through
the GEMM. Once the centres settle that is a few percent of the rows. The test carries a margin
for the rounding error of the GEMM distances, so a row is kept only where Lloyd's computed
argmin would keep it too: the labels, centres and J are Lloyd's.

Plain Lloyd on an in-memory array keeps each chunk's labels and its float64 count and sum per
centre in the chunk's engine ``state``: after the first pass only the rows that changed centre
move their contribution (a few percent of the rows once the centres settle), and J comes from
those statistics, ``J = sum_n w_n |x_n|^2 - 2 sum_k mu_k^T S_k + sum_k N_k |mu_k|^2``, so the
E-step needs only the labels of its distance blocks (a ``.npy`` file's fit keeps no labels, so
that its memory stays bounded by the chunk size, and sums every row again).

The bounds (4 numbers per row) live in the per-chunk ``state`` of the EM engine
(:meth:`KMeans._e_step_stats_stateful`): chunk ``i`` of an array or ``.npy`` file is the same
rows on every pass, and on each ``torch.distributed`` rank its own shard, so each chunk's
bounds travel with it; they are dropped after each initialisation. :class:`Batches` may change
between passes, so they are always clustered by plain Lloyd.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse
import torch
from sklearn.base import (BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin,
                          TransformerMixin)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, check_random_state

from .._base import TorchEstimatorMixin, check_dense
from ..core import distributed
from ..core.em import Candidates, DataSource, EMMixin, Rows, accumulate, data_source
from ..core.threads import torch_threads

INIT_MAX_ROWS = 100_000  # rows k-means++ looks at when the data are larger (uniform subset)
# With algorithm="auto", a chunk whose rows fail their Hamerly bounds more than this often
# goes back to plain Lloyd (the bounds then cost more than they save), and a chunk running
# Lloyd tests the bounds on about PROBE_ROWS of its rows to decide when to switch to them.
HAMERLY_MAX_STALE = 0.25
PROBE_ROWS = 256
# Lloyd on an array keeps each chunk's sums and moves the rows that changed centre; once more
# than this fraction of a chunk's rows moved, summing the chunk again is cheaper (the move
# reads each moved row twice, with signed weights).
RESUM_FRACTION = 0.25
CHUNK_ELEMENTS = 2**21  # default chunk: 65536 rows of 32 features (split in _BLOCK_ROWS blocks)


def _squared_distances(X: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(N, K) ``|x_n - mu_k|^2 = |x_n|^2 - 2 x_n^T mu_k + |mu_k|^2``, clamped at 0.

    The expansion cancels catastrophically far from the origin (its rounding error is about
    ``eps (|x|^2 + |mu|^2)``), so callers pass rows and centres centred on a common point.
    """
    d2 = torch.addmm((centers * centers).sum(1), X, centers.T, alpha=-2.0)
    return (d2 + (X * X).sum(1, keepdim=True)).clamp_min_(0.0)


def _bounds(min_d2: torch.Tensor, next_d2: torch.Tensor, err: torch.Tensor):
    """Hamerly's ``(upper, lower)`` bounds (N,), (N,) on the distances to the nearest and to
    the second-nearest centre from their GEMM squared distances, widened by the rounding
    error ``err`` (N,) of those."""
    eps = torch.finfo(min_d2.dtype).eps
    upper = (min_d2 + err).sqrt_().mul_(1 + 2 * eps)
    lower = (next_d2 - err).clamp_min_(0.0).sqrt_().mul_(1 - 2 * eps)
    return upper, lower


# Rows per distance block: the (rows, K) block stays in cache between the GEMM and argmin.
_BLOCK_ROWS = 2048


def _label_sums(X: torch.Tensor, labels: torch.Tensor, K: int,
                weights: torch.Tensor | None = None) -> torch.Tensor:
    """``S_k = sum_n w_n [labels_n = k] x_n``: (K, D) in X's dtype, from X (N, D), labels (N,)
    and weights (N,) (all 1 if None; negative ones subtract rows).

    On CPU one sparse (weighted one-hot)^T X product: about twice as fast as ``index_add_``
    over every row of a chunk and 3-4 times over a subset of rows (``index_add_`` of a
    float64 (M, D) block runs row by row here); ``index_add_`` elsewhere."""
    if X.device.type != "cpu":
        return X.new_zeros(K, X.shape[1]).index_add_(
            0, labels, X if weights is None else X * weights[:, None])
    N = X.shape[0]
    w = np.ones(N, dtype=X.numpy().dtype) if weights is None else weights.to(X.dtype).numpy()
    one_hot = scipy.sparse.csr_matrix((w, labels.numpy(), np.arange(N + 1)), shape=(N, K))
    return torch.from_numpy(np.asarray(one_hot.T @ X.numpy()))


def _nearest(X: torch.Tensor, centers: torch.Tensor, *, shift: torch.Tensor | None = None,
             second: bool = False, sums: torch.Tensor | None = None,
             weights: torch.Tensor | None = None, minima: bool = True):
    """``(min_k |x_n - mu_k|^2, argmin_k)`` per row, (N,) and (N,); with ``second``, also
    the second-smallest squared distance (N,) (``inf`` when K = 1); with ``minima=False``
    only the labels, as ``(None, argmin_k)`` (Lloyd's E-step gets J from the sums).

    Rows and centres are centred on ``shift`` (D,) first when it is given (during a fit, the
    data mean when the data lie far from the origin), so the GEMM expansion does not cancel.
    With ``sums`` (K, D), each row's centred value ``x_n - shift`` (times ``weights[n]`` if
    given) is added to the sum of its centre.

    The rows are taken ``_BLOCK_ROWS`` at a time so each (B, K) block of ``|mu_k|^2 -
    2 x^T mu_k`` stays in cache for its argmin (``|x|^2`` does not change the argmin and is
    added to the minima only). On CPU the block runs in numpy (zero-copy views, one
    preallocated block): its OpenBLAS GEMM is about 25% and its SIMD argmin about 7 times
    faster than torch's here; the sums are one sparse (one-hot)^T X product per chunk, about
    twice as fast as ``index_add_``.
    """
    N, K = X.shape[0], centers.shape[0]
    if shift is not None:
        centers = centers - shift  # (K, D)
    c2 = (centers * centers).sum(1)  # (K,)
    minus_2_centers_t = (-2.0 * centers).T.contiguous()  # (D, K)
    labels = torch.empty(N, dtype=torch.int64, device=X.device)
    min_d2 = torch.empty(N, dtype=X.dtype, device=X.device)
    next_d2 = torch.empty_like(min_d2) if second else None
    cpu = X.device.type == "cpu"
    if cpu:
        Xb, lb, mb = X.numpy(), labels.numpy(), min_d2.numpy()
        nb = next_d2.numpy() if second else None
        # |mu_k|^2 - 2 x^T mu_k as one GEMM of [x, 1] (B, D + 1) by [-2 mu; |mu|^2] (D + 1, K).
        W = torch.cat([minus_2_centers_t, c2[None]]).numpy()  # (D + 1, K)
        B, D = min(_BLOCK_ROWS, N), X.shape[1]
        rows_1 = np.ones((B, D + 1), dtype=Xb.dtype)  # (B, D + 1); its last column stays 1
        block = np.empty((B, K), dtype=Xb.dtype)  # (B, K)
        ar = np.arange(B)
    for start in range(0, N, _BLOCK_ROWS):
        rows = slice(start, start + _BLOCK_ROWS)
        if cpu:
            m = min(B, N - start)
            xb = rows_1[:m, :D]  # (B, D): the block's rows, centred on shift
            if shift is None:
                xb[...] = Xb[rows]
            else:
                np.subtract(Xb[rows], shift.numpy(), out=xb)
            d2 = np.matmul(rows_1[:m], W, out=block[:m])  # (B, K)
            lab = d2.argmin(1, out=lb[rows])  # the first minimum, as torch's; in place
            if not minima:
                continue
            mb[rows] = d2[ar[:m], lab]
            if second:  # (argmin and take: numpy's min over short rows is much slower)
                d2[ar[:m], lab] = np.inf
                nb[rows] = d2[ar[:m], d2.argmin(1)]
            x2 = np.einsum("ij,ij->i", xb, xb)  # (B,) |x_n - shift|^2
            mb[rows] += x2
            if second:
                nb[rows] += x2
        else:
            xb = X[rows] if shift is None else X[rows] - shift
            d2 = torch.addmm(c2, xb, minus_2_centers_t)  # (B, K)
            labels[rows] = d2.argmin(1)
            if sums is not None:
                sums.index_add_(0, labels[rows], xb if weights is None
                                else xb * weights[rows, None])
            if not minima:
                continue
            x2 = (xb * xb).sum(1)
            min_d2[rows] = d2.gather(1, labels[rows, None]).squeeze(1) + x2
            if second:
                next_d2[rows] = d2.scatter_(1, labels[rows, None], math.inf).amin(1) + x2
    if cpu and sums is not None:
        # sum_n w_n [a(n) = k] x_n as (one-hot)^T X, then - N_k shift for the centred sums.
        S = _label_sums(X, labels, K, weights).to(sums.dtype)  # (K, D)
        if shift is not None:
            counts = torch.bincount(labels, weights=weights, minlength=K).to(sums.dtype)
            S -= counts[:, None] * shift.to(sums.dtype)
        sums += S
    if not minima:
        return None, labels
    min_d2.clamp_min_(0.0)
    if second:
        return min_d2, labels, next_d2.clamp_min_(0.0)
    return min_d2, labels


def kmeans_plusplus(X, n_clusters: int, *, sample_weight=None, random_state=None,
                    n_local_trials=None):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007), as scikit-learn does it.

    The first centre is a row drawn with probability proportional to its weight (uniformly
    without ``sample_weight``); each next one is the best (lowest resulting weighted
    potential) of ``2 + log K`` rows drawn with probability proportional to their weighted
    squared distance to the nearest centre chosen so far. ``X`` is an (N, D) tensor or a
    dense array (sparse input is refused: convert it with ``X.toarray()``).
    Returns ``(centers (K, D), indices (K,))``.
    """
    X = check_dense(X)
    if not isinstance(X, torch.Tensor):
        X = torch.as_tensor(check_array(X, dtype=[np.float64, np.float32], accept_sparse=False,
                                        input_name="X"))
    n = X.shape[0]
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters={n_clusters} must be between 1 and n_samples={n}.")
    w = None if sample_weight is None else torch.as_tensor(
        _check_sample_weight(sample_weight, np.empty(n)), dtype=torch.float64, device=X.device)
    rng = check_random_state(random_state)
    trials = n_local_trials or 2 + int(math.log(n_clusters))
    p = np.full(n, 1.0 / n) if w is None else (w / w.sum()).cpu().numpy()
    indices = [int(rng.choice(n, p=p))]  # the same draw as scikit-learn
    # Distances between rows centred on their mean (no cancellation far from the origin).
    Xc = X - X.mean(0)  # (N, D)

    def weighted(d2):  # (N,) or (N, T): the weighted squared distances, in float64
        d2 = d2.to(torch.float64)
        return d2 if w is None else d2 * (w if d2.dim() == 1 else w[:, None])

    closest = _squared_distances(Xc, Xc[indices]).squeeze(1)  # (N,)
    potential = weighted(closest).sum()
    for _ in range(1, n_clusters):
        # Sample candidates with probability w D(x)^2 / sum w D^2 by inverting the cumsum.
        draws = torch.as_tensor(rng.uniform(size=trials), dtype=torch.float64, device=X.device)
        cumulative = torch.cumsum(weighted(closest), 0)
        candidates = torch.searchsorted(cumulative, draws * potential).clamp_(max=n - 1)
        d2 = torch.minimum(closest[:, None], _squared_distances(Xc, Xc[candidates]))  # (N, T)
        best = int(torch.argmin(weighted(d2).sum(0)))
        closest, potential = d2[:, best], weighted(d2[:, best]).sum()
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
    see the module docstring; the same result, much faster on clustered data), "lloyd" (every
    distance every iteration) or "auto" (the default: Hamerly's bounds on arrays, where each
    chunk falls back to plain Lloyd for a while, 8, 16, 32, ... iterations, whenever more than
    ``HAMERLY_MAX_STALE`` of its rows fail their bounds, as on data without clear clusters;
    "lloyd" on ``.npy`` files, whose fits keep memory bounded by the chunk size while the
    bounds take 4 numbers per row; :class:`~bayesdl.core.em.Batches` are always fitted by
    "lloyd").
    ``fit`` takes an array, a ``.npy`` path (memory-mapped) or
    :class:`bayesdl.core.em.Batches`, and ``sample_weight`` (N,) for an array (weighted
    K-means: each row counts ``sample_weight[n]`` times in the centres and in J, as in
    scikit-learn); ``partial_fit`` updates the centres from one mini-batch (each centre the
    weighted running mean of the rows ever assigned to it, as MiniBatchKMeans).
    An empty cluster is moved to the row farthest from its centre, never left as NaN; when
    the final labels use fewer than ``n_clusters`` clusters (duplicate points) a
    ``ConvergenceWarning`` says so, as scikit-learn's does.

    Distances are computed on rows and centres centred on the data mean (computed in the
    first pass over the data and all-reduced), so data far from the origin keep their
    accuracy; prediction centres on the mean of the centres.

    Attributes: ``cluster_centers_``, ``labels_``, ``inertia_`` (J, PRML 9.1, weighted),
    ``n_iter_``, ``converged_``, ``lower_bound_`` (= -J of the last E-step), ``lower_bounds_``,
    ``counts_`` (weight of the rows per centre; for ``partial_fit``), ``variance_``
    (``inertia_ / (sum of weights * D)``, the temperature of :meth:`predict_dist`).
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
    def _data_source(self, X, *, reset: bool, sample_weight=None) -> DataSource:
        """The rows of ``X``; with ``sample_weight``, each row carries its weight as one more
        (last) column, so the weights travel with their rows through the engine's chunks."""
        data = data_source(self, X, reset=reset, chunk_elements=CHUNK_ELEMENTS)
        if reset and data.n_samples < self.n_clusters:
            raise ValueError(f"n_samples={data.n_samples} should be >= n_clusters="
                             f"{self.n_clusters}: use fewer clusters or more data.")
        self._weighted = sample_weight is not None
        if self._weighted:
            if not isinstance(data.data, np.ndarray):
                raise ValueError("sample_weight needs X as an in-memory array; for a .npy "
                                 "file or Batches, fit without weights (or load the rows).")
            w = _check_sample_weight(sample_weight, data.data, dtype=data.data.dtype)
            data = DataSource(np.column_stack([data.data, w]), dtype=data.dtype,
                              device=data.device, chunk_size=self.chunk_size,
                              chunk_elements=CHUNK_ELEMENTS)
        return data

    def _split(self, chunk: torch.Tensor):
        """``(rows (N, D), weights (N,) or None)`` of a chunk of the data source."""
        if self._weighted:
            return chunk[:, :-1], chunk[:, -1]
        return chunk, None

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y=None, sample_weight=None):
        """Cluster ``X`` (array, ``.npy`` path or Batches), rows weighted by
        ``sample_weight`` (N,) if given; returns ``self``."""
        self._validate_params()
        return self._fit_source(self._data_source(X, reset=True, sample_weight=sample_weight))

    def _fit_source(self, data: DataSource):
        if not hasattr(self, "n_features_in_"):  # called directly by GaussianMixture's init
            self.n_features_in_, self._weighted = data.n_features, False
        self._hamerly = self.algorithm == "hamerly" or (
            self.algorithm == "auto" and data.path is None)
        # Lloyd keeps each chunk's labels (8 bytes a row) for arrays only: a .npy file's fit
        # keeps memory bounded by the chunk size.
        self._keep_labels = data.in_memory
        self._fit_data = data  # for the M-step's rare pass to reseed empty clusters
        self._prepare_fit(data)
        try:
            self._fit_em(data)

            # A final E-step, so labels_ and inertia_ belong to the final centres.
            def final(chunk):
                X, w = self._split(chunk)
                min_d2, labels = _nearest(X, self._centers, shift=self._gemm_shift)
                counts = torch.bincount(labels, weights=w, minlength=self.n_clusters)
                J = min_d2.sum() if w is None else min_d2 @ w
                return {"counts": counts, "labels": Rows(labels)}, J

            stats, inertia, _ = accumulate(data, final)
        finally:
            del self._fit_data, self._data_mean
        self.labels_ = self._to_numpy(stats["labels"].values)
        self.inertia_ = float(inertia)
        self.counts_ = self._to_numpy(stats["counts"]).astype(np.float64)
        self.variance_ = self.inertia_ / (self.counts_.sum() * self.n_features_in_)
        used = len(np.unique(self.labels_))
        if used < self.n_clusters:  # scikit-learn's warning, in its words
            warnings.warn(f"Number of distinct clusters ({used}) found smaller than n_clusters "
                          f"({self.n_clusters}). Possibly due to duplicate points in X.",
                          ConvergenceWarning, stacklevel=3)
        return self

    def _prepare_fit(self, data: DataSource):
        """One pass for the data mean (the centring point of every distance, if the data lie
        far from the origin) and the convergence tolerance ``tol * mean feature variance``
        (scikit-learn's)."""
        # Moments about rank 0's first-chunk mean, so the variance does not cancel either.
        first = self._split(next(iter(data)))[0].mean(0).double()
        (first,) = distributed.broadcast([first])

        def moments(chunk):
            X = self._split(chunk)[0].double() - first  # (N, D), a copy
            s1 = X.sum(0)
            # (torch's einsum "ij,ij->j" took 44 ms per 65,536 x 32 chunk, square + sum 4 ms)
            return {"s1": s1, "s2": X.square_().sum(0)}, X.new_zeros(())

        stats, _, n = accumulate(data, moments)
        mean = stats["s1"] / n  # (D,) about `first`
        variance = stats["s2"] / n - mean**2  # (D,)
        self._tol_abs = float(variance.mean()) * self.tol
        mean = first + mean
        # Centre only data farther from the origin than their spread: nearer, centring does
        # not change the rounding error eps (|x|^2 + |mu|^2) of the distances by more than a
        # small factor, and skipping it saves a pass over each block.
        far = float(mean @ mean) > float(variance.sum())
        self._data_mean = (mean if far else torch.zeros_like(mean)).to(self._torch_dtype)

    def _initialize(self, data, random_state):
        K = self.n_clusters
        if isinstance(self.init, str) and self.init == "k-means++":
            X, w = self._split(data.head(INIT_MAX_ROWS, random_state))
            centers, _ = kmeans_plusplus(X, K, sample_weight=w, random_state=random_state)
        elif isinstance(self.init, str):  # random rows (with probability ~ weight)
            p = None
            if self._weighted:
                w = np.asarray(data.data[:, -1], dtype=np.float64)
                p = w / w.sum()
            rows = random_state.choice(data.n_samples, size=K, replace=False, p=p)
            centers = self._split(data.take(rows))[0]
        else:
            centers = self._to_torch(np.asarray(self.init, dtype=np.float64))
            if centers.shape != (K, self.n_features_in_):
                raise ValueError(f"init must have shape ({K}, {self.n_features_in_}); "
                                 f"got {tuple(centers.shape)}.")
        self._set_parameters((self._to_numpy(centers),))

    def _e_step_stats(self, chunk, state: dict | None = None):
        """PRML 9.2: nearest centre of each row; the chunk's (weighted) counts, sums of the
        centred rows ``x_n - shift`` and J.

        ``state`` (the chunk's, on replayable data) keeps ``x2_sum = sum_n w_n |x_n -
        shift|^2``, the part of J that does not change between passes; for an in-memory
        array also the chunk's labels and statistics (float64), so that after the first pass
        only the rows that changed centre update the sums (a few percent of the rows once
        the centres settle) instead of every row being summed again."""
        X, w = self._split(chunk)
        K, D = self.n_clusters, X.shape[1]
        keep = state is not None and self._keep_labels
        update = keep and "assigned" in state
        sums = None if update else X.new_zeros(K, D)  # (K, D)
        _, labels = _nearest(X, self._centers, shift=self._gemm_shift, sums=sums, weights=w,
                             minima=False)
        if update:
            old = state["assigned"]
            moved = torch.nonzero(labels != old).squeeze(1)  # (M,)
            if moved.numel() <= RESUM_FRACTION * labels.numel():
                self._move_rows(state, X[moved], None if w is None else w[moved], old[moved],
                                labels[moved])
            else:  # moving 2M rows would cost more than summing the chunk again
                state["counts"] = torch.bincount(labels, weights=w, minlength=K).double()
                state["sums"] = _label_sums(X.double() - self._shift.double(), labels, K,
                                            None if w is None else w.double())
            state["assigned"] = labels
            counts, sums = state["counts"].clone(), state["sums"].clone()
        else:
            counts = torch.bincount(labels, weights=w, minlength=K).double()  # (K,)
            sums = sums.double()
            if keep:
                state.update(assigned=labels, counts=counts.clone(), sums=sums.clone())
        x2_sum = None if state is None else state.get("x2_sum")
        if x2_sum is None:
            Xc = X if self._gemm_shift is None else X - self._gemm_shift
            x2 = torch.einsum("ij,ij->i", Xc, Xc).double()  # (N,) |x_n - shift|^2
            x2_sum = x2.sum() if w is None else x2 @ w.double()
            if state is not None:
                state["x2_sum"] = x2_sum
        return {"counts": counts, "sums": sums}, self._objective(x2_sum, counts, sums)

    def _objective(self, x2_sum, counts, sums) -> torch.Tensor:
        """J (PRML 9.1) of a chunk from its statistics, no per-row distance: with ``N_k``,
        ``S_k`` the (weighted) count and sum of the centred rows assigned to centre k,
        ``J = sum_n w_n |x_n|^2 - 2 sum_k mu_k^T S_k + sum_k N_k |mu_k|^2`` (centred)."""
        Cc = (self._centers - self._shift).double()  # (K, D)
        return x2_sum - 2.0 * (sums * Cc).sum() + counts @ (Cc * Cc).sum(1)

    def _move_rows(self, state: dict, rows, weights, old, new):
        """Move ``rows`` (M, D) (weights (M,) or None) from centre ``old`` (M,) to ``new``
        (M,) in the chunk's float64 ``sums`` (of the centred rows) and ``counts``."""
        rows = rows.double() - self._shift.double()  # (M, D)
        weights = torch.ones_like(new, dtype=torch.float64) if weights is None \
            else weights.double()
        # S_k += sum_m w_m ([new_m = k] - [old_m = k]) x_m: the rows twice, signed weights
        signed = torch.cat([weights, -weights])  # (2M,)
        into = torch.cat([new, old])  # (2M,)
        K = state["counts"].shape[0]
        state["sums"] += _label_sums(torch.cat([rows, rows]), into, K, signed)
        state["counts"] += torch.bincount(into, weights=signed, minlength=K)

    def _e_step_stats_stateful(self, chunk, state):
        """The E-step of :meth:`_e_step_stats` by Hamerly's algorithm (Hamerly 2010, Alg. 2).

        ``state`` (this chunk's, kept by the EM engine across iterations) holds the
        ``centers`` of the previous E-step, and per row the ``labels``, the bounds ``upper``
        and ``lower`` and ``x2 = |x_n - shift|^2``, all (N,); and the chunk's statistics
        ``counts`` (K,) and ``sums`` (K, D), which are updated by the rows that changed
        centre only, so an iteration reads just the bounds and the few rows whose bounds
        fail, not the data.

        With ``algorithm="auto"`` a chunk starts with plain Lloyd E-steps and a probe: every
        ``stride``-th row (about ``PROBE_ROWS`` of them) keeps Hamerly's bounds, and the chunk
        switches to bounds for all its rows once at most ``HAMERLY_MAX_STALE / 2`` of the
        probed rows fail Hamerly's test (the margin keeps a chunk from switching back and
        forth). The first E-step with bounds costs about two Lloyd passes (the second-nearest
        distances), so a chunk pays for it only when the bounds will hold; on data without
        clear clusters it stays with Lloyd and probes less and less often. A chunk
        where more than ``HAMERLY_MAX_STALE`` of the rows fail drops its bounds and probes
        again.
        """
        if not self._hamerly:
            return self._e_step_stats(chunk, state)
        if self.algorithm == "auto" and not state.get("bounds"):
            stats = self._e_step_stats(chunk, state)
            state["bounds"] = self._probe_bounds(self._split(chunk)[0], state)
            return stats
        X, w = self._split(chunk)
        C, shift = self._centers, self._shift
        N, D = X.shape
        first = "labels" not in state  # the first E-step with bounds: every row
        if first:
            Xc = X if self._gemm_shift is None else X - shift
            x2 = torch.einsum("ij,ij->i", Xc, Xc)  # (N,)
            w64 = None if w is None else w.double()
            x2_sum = x2.sum(dtype=torch.float64) if w is None else x2.double() @ w64
            state.pop("assigned", None)  # Lloyd's labels (algorithm="auto"), replaced here
            state.update(x2=x2, x2_sum=x2_sum, w=w64,
                         labels=torch.empty_like(x2, dtype=torch.int64),
                         upper=torch.empty_like(x2), lower=torch.empty_like(x2))
        labels, upper, lower, x2 = (state[k] for k in ("labels", "upper", "lower", "x2"))
        err = self._rounding_error(x2, D)  # (N,)
        if not first:
            stale = self._stale_rows(X, labels, upper, lower, err, state["centers"])
            if self._give_up_bounds(state, stale.numel() > HAMERLY_MAX_STALE * N):
                return self._e_step_stats(chunk, state)
        else:
            stale = slice(None)  # every row
        # The failing rows: both nearest centres from the GEMM, bounds widened by the rounding.
        rows = X[stale]  # (M, D)
        # In float64 the first pass's sums come from _nearest's one-hot product (fast).
        fast_sums = first and X.dtype == torch.float64
        sums = X.new_zeros(self.n_clusters, D) if fast_sums else None  # (K, D)
        min_d2, new_labels, next_d2 = _nearest(rows, C, shift=self._gemm_shift, second=True,
                                               sums=sums, weights=w if fast_sums else None)
        old_labels = None if first else labels[stale]  # (M,), a copy
        labels[stale] = new_labels
        upper[stale], lower[stale] = _bounds(min_d2, next_d2, err[stale])
        # The chunk's statistics of the centred rows, kept in float64 (whatever the dtype) so
        # that the updates below add no drift beyond float64 rounding.
        w = state["w"]
        if first:
            counts = torch.bincount(labels, weights=w, minlength=self.n_clusters).double()
            if not fast_sums:
                sums = _label_sums(X.double() - shift.double(), labels, self.n_clusters,
                                   None if w is None else w.double())
            state.update(counts=counts, sums=sums)
        else:  # move the rows that changed centre from their old centre's sums to the new
            moved = new_labels != old_labels
            self._move_rows(state, rows[moved], None if w is None else w[stale][moved],
                            old_labels[moved], new_labels[moved])
        state["centers"] = C
        counts, sums = state["counts"].clone(), state["sums"].clone()
        return {"counts": counts, "sums": sums}, self._objective(state["x2_sum"], counts, sums)

    def _rounding_error(self, x2: torch.Tensor, D: int) -> torch.Tensor:
        """(N,) ``err_n >= |fl(d^2) - d^2|`` for the GEMM distances ``|x|^2 - 2 x^T mu +
        |mu|^2`` of the centred rows (``x2 = |x_n - shift|^2``) and centres, with the rounding
        of the centring itself: a row is skipped only if Lloyd's rounded distances would give
        it the same centre."""
        eps = torch.finfo(x2.dtype).eps
        return (2 * (D + 6) * eps) * (x2 + self._max_center_norm2)

    def _stale_rows(self, X, labels, upper, lower, err, old_centers) -> torch.Tensor:
        """Indices (M,) of the rows of ``X`` (N, D) that fail Hamerly's test after the centres
        moved from ``old_centers``; updates the bounds ``upper``, ``lower`` (N,) in place."""
        C, D = self._centers, X.shape[1]
        eps = torch.finfo(X.dtype).eps
        # Hamerly's update after the centres moved by delta_k = |mu_k - mu'_k|:
        # u_n += delta_a(n), l_n -= max_{j != a(n)} delta_j (rounded outward).
        delta = (C - old_centers).square().sum(1).sqrt() * (1 + (D + 4) * eps)  # (K,)
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
        return stale[exact.square() + 2 * err[stale] > bound[stale]]

    def _probe_bounds(self, X: torch.Tensor, state: dict) -> bool:
        """Whether the chunk's rows ``X`` (N, D) should switch to Hamerly's bounds: Hamerly's
        test on every ``stride``-th row, whose bounds (``state["probe"]``) are kept from
        the previous E-step. True once at most ``HAMERLY_MAX_STALE / 2`` of them fail. After
        a failed test the chunk waits 1, 2, 4, then every 8 E-steps before it probes again
        (the probe's small GEMMs cost more per row than the chunk's)."""
        if state.get("wait", 0) > 0:
            state["wait"] -= 1
            return False
        rows = X[:: max(1, X.shape[0] // PROBE_ROWS)]  # (P, D)
        Xc = rows if self._gemm_shift is None else rows - self._shift
        err = self._rounding_error(torch.einsum("ij,ij->i", Xc, Xc), X.shape[1])  # (P,)
        if "probe" in state:
            labels, upper, lower, old_centers = state.pop("probe")
            stale = self._stale_rows(rows, labels, upper, lower, err, old_centers)
            if stale.numel() <= HAMERLY_MAX_STALE / 2 * rows.shape[0]:
                return True
            state["wait"] = state["next_wait"] = min(8, 2 * state.get("next_wait", 0.5))
            return False
        min_d2, labels, next_d2 = _nearest(rows, self._centers, shift=self._gemm_shift,
                                           second=True)
        state["probe"] = (labels, *_bounds(min_d2, next_d2, err), self._centers)
        return False

    def _give_up_bounds(self, state: dict, failing: bool) -> bool:
        """With ``algorithm="auto"``, when too many rows fail their bounds (``failing``), drop
        the chunk's bounds and go back to Lloyd E-steps with a probe."""
        if self.algorithm != "auto" or not failing:
            return False
        x2_sum = state["x2_sum"]
        state.clear()
        state.update(x2_sum=x2_sum)
        return True

    def _compute_lower_bound(self, stats, log_lik_sum, n_samples):
        return -float(log_lik_sum)  # -J (PRML 9.1) before this M-step

    def _m_step(self, stats):
        """PRML 9.4: each centre becomes the (weighted) mean of its rows; empty ones are
        relocated."""
        counts, sums = stats["counts"], stats["sums"]
        shift = self._shift.to(torch.float64)
        centers = shift + sums / counts.clamp_min(1e-300)[:, None]  # sums are centred
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
            X, _ = self._split(chunk)
            min_d2, _ = _nearest(X, self._centers, shift=self._gemm_shift)
            return {"far": Candidates.top(min_d2, X, m)}, X.new_zeros(())

        return accumulate(self._fit_data, far)[0]["far"].rows

    def _converged(self, change: float) -> bool:
        # scikit-learn's criterion: total squared centre shift below tol * mean variance.
        return self._center_shift <= self._tol_abs

    def _get_parameters(self):
        return (self.cluster_centers_,)

    def _set_parameters(self, params):
        (self.cluster_centers_,) = params
        C = self._centers = self._to_torch(self.cluster_centers_)
        # Distances are computed about the data mean during a fit, else about the mean of
        # the centres (which lie among the data): see _nearest.
        data_mean = getattr(self, "_data_mean", None)
        self._shift = C.mean(0) if data_mean is None else data_mean
        self._gemm_shift = self._shift if bool(self._shift.any()) else None  # (D,) or None
        if getattr(self, "_hamerly", False):
            # For Hamerly's test: s(k) = min_{j != k} |mu_k - mu_j| / 2 (rounded down), from
            # differences (no GEMM rounding) _BLOCK_ROWS centres at a time, and max_k |mu_k|^2
            # of the centred centres (for the rounding error of the GEMM distances).
            # On one thread: torch runs even a (64, 64) cdist on all its OpenMP threads, whose
            # spin-wait after it cost ~10 ms CPU per M-step on 2 cores, taken from the next
            # pass's workers (algorithm="auto" was 0.87x where "lloyd" was 0.99x).
            K, D = C.shape
            gaps = torch.empty(K, dtype=C.dtype, device=C.device)  # (K,)
            with torch_threads(1):
                for start in range(0, K, _BLOCK_ROWS):
                    block = torch.cdist(C[start : start + _BLOCK_ROWS], C,
                                        compute_mode="donot_use_mm_for_euclid_dist")  # (B, K)
                    block.diagonal(start).fill_(math.inf)  # not the centre itself
                    gaps[start : start + _BLOCK_ROWS] = block.amin(1)
            self._half_gaps = gaps * (0.5 * (1 - (D + 4) * torch.finfo(C.dtype).eps))
            Cc = C - self._shift
            self._max_center_norm2 = float((Cc * Cc).sum(1).max())

    # -- mini-batch -------------------------------------------------------------------------
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the centres with one mini-batch (MiniBatchKMeans' running means), its rows
        weighted by ``sample_weight`` (N,) if given."""
        first = not hasattr(self, "cluster_centers_")
        if first:
            self._validate_params()
        data = self._data_source(X, reset=first, sample_weight=sample_weight)
        if first:
            X0, w0 = self._split(data.head(INIT_MAX_ROWS, self.random_state))
            centers, _ = kmeans_plusplus(X0, self.n_clusters, sample_weight=w0,
                                         random_state=self.random_state)
            self._set_parameters((self._to_numpy(centers),))
            self.counts_ = np.zeros(self.n_clusters)
        self._set_parameters((self.cluster_centers_,))  # also after a load
        stats, inertia, _ = accumulate(data, self._e_step_stats)
        counts = torch.as_tensor(self.counts_, dtype=torch.float64) + stats["counts"].cpu()
        # mu_k <- (n_k mu_k + sum of the batch's rows in k) / (n_k + batch count of k), with
        # the batch's sums taken about `shift`: sum x = sum (x - shift) + count * shift.
        old = torch.as_tensor(self.cluster_centers_, dtype=torch.float64)
        shift = self._shift.cpu().double()
        batch_sums = stats["sums"].cpu() + stats["counts"].cpu()[:, None] * shift
        new = (old * torch.as_tensor(self.counts_)[:, None] + batch_sums) \
            / counts.clamp_min(1e-300)[:, None]
        centers = torch.where((counts > 0)[:, None], new, old)
        self.counts_ = counts.numpy()
        self._set_parameters((centers.to(self._torch_dtype).numpy(),))
        self.inertia_ = float(inertia)
        self.variance_ = self.inertia_ / (float(stats["counts"].sum()) * self.n_features_in_)
        self.n_iter_ = getattr(self, "n_iter_", 0) + 1
        return self

    # -- prediction -------------------------------------------------------------------------
    def _distances(self, X) -> torch.Tensor:
        """(N, K) squared distances of validated ``X`` to the centres, both centred on the
        mean of the centres (so they do not cancel far from the origin)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        centers = self._to_torch(self.cluster_centers_)
        shift = centers.mean(0)
        data = DataSource(X, dtype=self._torch_dtype, device=self._torch_device,
                          chunk_size=self.chunk_size, chunk_elements=CHUNK_ELEMENTS)
        return torch.cat([_squared_distances(c - shift, centers - shift) for c in data])

    def predict(self, X):
        """Index of the nearest centre of each row (N,)."""
        return self._to_numpy(self._distances(X).argmin(1))

    def predict_dist(self, X) -> torch.distributions.Categorical:
        """A soft assignment of each row to the clusters, as a Categorical (N rows, K).

        K-means is the hard (zero-variance) limit of EM for the mixture of K isotropic
        Gaussians of equal weight and shared variance ``sigma^2`` (PRML 9.3.2); this returns
        that mixture's responsibilities (PRML 9.23) at the fitted centres and the fitted
        variance ``sigma^2 = variance_ = inertia_ / (N D)`` (its maximum-likelihood value given
        the hard assignments): ``p(k | x) = softmax_k(-|x - mu_k|^2 / (2 sigma^2))``. The
        temperature is therefore ``2 sigma^2``; the most probable cluster is ``predict(X)``.
        """
        d2 = self._distances(X)  # (N, K)
        return torch.distributions.Categorical(logits=-d2 / (2.0 * self.variance_))

    @property
    def _n_features_out(self) -> int:
        """K output columns of ``transform``, named ``kmeans0..`` as in scikit-learn."""
        return self.cluster_centers_.shape[0]

    def transform(self, X):
        """Euclidean distances to every centre (N, K)."""
        return self._to_numpy(self._distances(X).sqrt())

    def fit_predict(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).labels_

    def score(self, X, y=None, sample_weight=None):
        """``-J`` on ``X``: minus the (weighted) sum of squared distances to the nearest
        centre."""
        min_d2 = self._to_numpy(self._distances(X).amin(1))
        if sample_weight is None:
            return -float(min_d2.sum())
        return -float(min_d2 @ _check_sample_weight(sample_weight, min_d2[:, None]))
