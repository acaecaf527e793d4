"""The EM driver over summed sufficient statistics (K-means, GMM, VB-GMM, ...).

A latent-variable model supplies four hooks:

- ``_initialize(data, random_state)`` sets the initial parameters (it may pass over ``data``
  with :func:`accumulate`);
- ``_e_step_stats(X_chunk) -> (stats, log_lik_sum)``: the E-step on one chunk of rows,
  returning a dict of sufficient statistics (tensors, summed over chunks; or
  :class:`Candidates`, merged) and the chunk's summed log-likelihood (or the data term of
  the ELBO). It must depend on its chunk only: chunks are processed on several threads;
- ``_m_step(stats)``: the M-step from the statistics summed over all rows;
- ``_get_parameters()`` / ``_set_parameters(params)`` so the best of ``n_init`` runs is kept.

Optional: ``_e_step_stats_stateful(X_chunk, state)``, for an E-step that can reuse per-row
results of the previous iteration (K-means' distance bounds, Hamerly 2010; a mixture's
features of the chunk). When the data replay the same chunks in the same order on every pass
(arrays and ``.npy`` files, on each rank its own shard: :attr:`DataSource.replayable`), the
driver calls it instead of ``_e_step_stats`` with a dict ``state`` belonging to that chunk:
empty at the first E-step of each initialisation, then whatever the model left in it at the
previous iteration. It may depend on its chunk and that dict only. User :class:`Batches` may
change between passes, so they always get ``_e_step_stats``.

Optional: ``_compute_lower_bound(stats, log_lik_sum, n_samples)`` (default: the mean
log-likelihood ``log_lik_sum / n_samples``; variational models add their KL terms) and
``_converged(change)`` (default ``|change| < tol``).

Sequence models (HMMs, linear dynamical systems) read their data through
:class:`SequenceSource`: the rows of an array or ``.npy`` file cut into sequences by hmmlearn's
``lengths``, yielded as :class:`Sequences` chunks (whole sequences, padded, with their
lengths) instead of row blocks; the hooks and the driver are unchanged (a chunk's
``shape[0]`` is its number of timesteps).

Which run of ``n_init`` is kept. The driver calls ``_compute_lower_bound`` after each M-step,
but the statistics it gets come from the E-step *before* that M-step: for EM, K-means, PPCA or
an HMM that bound belongs to the parameters of the previous iteration, not to the final ones.
So, when there are several runs to compare (``n_init > 1``), the driver makes one more E-step
pass with each run's final parameters and ranks the runs by the bound of that pass (for
K-means the inertia of the final centres, as scikit-learn ranks its runs). A model whose
bound already belongs to its parameters after the M-step (the VB-GMM's ELBO, evaluated with
the updated variational factors) sets the class attribute ``_bound_after_m_step = True`` and
is ranked by its last bound, with no extra pass. In both cases ``lower_bound_`` and
``lower_bounds_`` stay the bounds computed in the loop (the last E-step's, as scikit-learn
reports them); only the choice of the run changes. scikit-learn's ``GaussianMixture`` ranks
its runs by the last E-step's bound, so with ``n_init > 1`` the two can keep different runs
where that bound and the final one order the runs differently (rare once runs converge).

The driver (:meth:`EMMixin._fit_em`) owns the loop. It reads the data as chunks from an
in-memory array, a memory-mapped ``.npy`` file or an iterable of batches (:class:`DataSource`),
so peak memory is bounded by the chunk size, never by the data; sums the statistics in
float64 whatever the model's dtype; all-reduces them when ``torch.distributed`` is
initialised (each rank then holds only its shard of the rows and every rank computes the same
M-step); and handles ``n_init``, ``max_iter``, ``tol``, ``warm_start``, ``verbose`` (a tqdm
bar showing the current bound) and ``ConvergenceWarning``, recording ``lower_bound_``,
``lower_bounds_``, ``n_iter_`` and ``converged_`` as scikit-learn's mixtures do.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_random_state
from tqdm.auto import tqdm

from . import distributed
from .threads import blas_threads, torch_threads

# Elements (rows x features) per chunk when the model does not say otherwise: a few MB of
# float64, so the per-chunk temporaries of an E-step stay in cache.
DEFAULT_CHUNK_ELEMENTS = 2**15
# Bytes read from a .npy file at a time (then released from memory).
READ_BLOCK_BYTES = 2**25


class Batches:
    """Mark an iterable of ``(n_i, d)`` batches as the data of one EM fit.

    ``source`` is re-iterable (a list of arrays, a ``DataLoader``) or a zero-argument
    callable returning a fresh iterator: EM passes over the data once per iteration, so a
    one-shot generator is rejected.
    """

    def __init__(self, source: Iterable | Callable[[], Iterable]):
        if not callable(source) and iter(source) is source:
            raise ValueError(
                "Batches needs data it can read many times (EM makes one pass per iteration), "
                "but got a one-shot iterator. Pass a list of arrays, a DataLoader, or a "
                "function that returns a fresh iterator."
            )
        self.source = source

    def __iter__(self):
        return iter(self.source() if callable(self.source) else self.source)


@dataclass
class Candidates:
    """The ``m`` rows with the largest ``scores`` seen so far (e.g. the worst-explained points).

    A non-summable statistic: merging keeps the top ``m`` of the union, so models can reseed
    an empty or collapsed component at a real data point however the data were chunked.
    """

    scores: torch.Tensor  # (m,)
    rows: torch.Tensor  # (m, d)

    @classmethod
    def top(cls, scores: torch.Tensor, rows: torch.Tensor, m: int) -> "Candidates":
        best = torch.topk(scores, min(m, scores.shape[0])).indices
        return cls(scores[best], rows[best])

    def merge(self, other: "Candidates") -> "Candidates":
        m = max(self.scores.shape[0], other.scores.shape[0])
        return Candidates.top(
            torch.cat([self.scores, other.scores.to(self.scores)]),
            torch.cat([self.rows, other.rows.to(self.rows)]),
            m,
        )

    def all_gather(self) -> "Candidates":
        if not distributed.is_distributed():
            return self
        m = self.scores.shape[0]
        return Candidates.top(distributed.all_gather_cat(self.scores),
                              distributed.all_gather_cat(self.rows), m)


class NpyFile:
    """A ``.npy`` file memory-mapped read-only, whose pages are released after each read.

    Reads copy the rows out and then ``madvise(MADV_DONTNEED)`` the mapping, so resident
    memory stays at one block however large the file (a plain ``np.memmap`` keeps every page
    it has touched resident until memory runs short).
    """

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
            except ValueError as e:
                raise ValueError(f"{path} is not a valid .npy file ({e}).") from e
            offset = f.tell()
            if len(shape) != 2 or dtype.kind not in "fiu" or dtype.hasobject:
                raise ValueError(f"{path} must hold a 2-D numeric array, got shape {shape} "
                                 f"of dtype {dtype}.")
            if fortran and shape[1] > 1:
                raise ValueError(f"{path} is stored in Fortran order; save it in C order "
                                 "(numpy.save(path, numpy.ascontiguousarray(X))).")
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.shape, self.dtype = shape, dtype
        self.array = np.frombuffer(self._map, dtype=dtype, count=shape[0] * shape[1],
                                   offset=offset).reshape(shape)

    def __getitem__(self, rows) -> np.ndarray:
        if isinstance(rows, slice):
            return self._copy(rows)
        # Scattered rows touch a page each: gather them a group at a time.
        rows = np.asarray(rows)
        group = max(1, READ_BLOCK_BYTES // mmap.PAGESIZE)
        return np.concatenate([self._copy(rows[i : i + group])
                               for i in range(0, max(len(rows), 1), group)])

    def _copy(self, rows) -> np.ndarray:
        out = np.array(self.array[rows])  # a copy, then drop the pages just read
        if hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)
        return out


@dataclass
class Rows:
    """A per-row output of a pass (labels, say): concatenated in row order, not summed."""

    values: torch.Tensor  # (N, ...)


class DataSource:
    """Chunked, validated read access to the rows of one fit.

    ``data`` is a 2-D array (numpy or torch; already validated by the estimator), a path to a
    ``.npy`` file (memory-mapped, read in blocks of ``READ_BLOCK_BYTES``) or
    :class:`Batches`. Chunks come out as tensors of ``dtype`` on ``device``, of
    ``chunk_size`` rows (default: ``chunk_elements`` values per chunk).
    """

    def __init__(self, data, *, dtype: torch.dtype, device: torch.device, chunk_size=None,
                 chunk_elements: int = DEFAULT_CHUNK_ELEMENTS):
        self.dtype, self.device = dtype, device
        self.path = None
        if isinstance(data, (str, os.PathLike)):
            self.path = Path(data)
            if self.path.suffix.lower() != ".npy":
                raise ValueError(f"{self.path}: only .npy files can be memory-mapped; "
                                 "convert the data with numpy.save first.")
            if not self.path.is_file():
                raise FileNotFoundError(f"No data file at {self.path}.")
            data = NpyFile(self.path)
        self.data = data
        self.is_batches = isinstance(data, Batches)
        # Arrays and files yield the same chunks in the same order on every pass.
        self.replayable = not self.is_batches
        # An array held in memory (not a file, not user batches): models may cache per-chunk
        # results of it across passes, its memory being spent already.
        self.in_memory = self.replayable and self.path is None
        # Only files and user batches are checked here; in-memory arrays were validated by
        # scikit-learn's validate_data in the estimator.
        self._check_chunks = not self.in_memory
        if self.is_batches:
            first = next(iter(data), None)
            if first is None:
                raise ValueError("The Batches are empty; pass at least one (n, d) batch.")
            self.n_features = int(np.shape(first)[1]) if np.ndim(first) == 2 else -1
            if self.n_features < 0:
                raise ValueError(f"Each batch must be 2-D (n, d), got shape {np.shape(first)}.")
            self.n_samples = None  # known after the first pass
        else:
            self.n_samples, self.n_features = (int(s) for s in data.shape)
        width = max(self.n_features, 1)
        self.chunk_size = int(chunk_size or max(256, chunk_elements // width))
        if chunk_size is None and self.in_memory:
            # The default evened out over an array's rows (as many chunks, equal sizes), so
            # the worker threads of a pass get equal work: with 500,000 rows and 65,536-row
            # chunks the last chunk would be 63% full and one of two workers would do 4
            # chunks while the other does 3.6.
            n_chunks = max(1, -(-self.n_samples // self.chunk_size))
            self.chunk_size = max(1, -(-self.n_samples // n_chunks))

    def _to_torch(self, block) -> torch.Tensor:
        if isinstance(block, np.ndarray) and min(block.strides, default=0) < 0:
            block = np.ascontiguousarray(block)  # a reversed view (X[::-1]): torch needs strides >= 0
        if isinstance(block, np.ndarray) and not block.flags.writeable:
            # read-only arrays are fine: chunks are never written (a warning filter costs
            # ~50 us, so it is set only for them, not for every chunk)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                block = torch.as_tensor(block)
        return torch.as_tensor(block).to(device=self.device, dtype=self.dtype)

    def _checked(self, t: torch.Tensor) -> torch.Tensor:
        if not self._check_chunks:
            return t
        if t.dim() != 2 or t.shape[1] != self.n_features:
            raise ValueError(f"Every batch must have shape (n, {self.n_features}); "
                             f"got {tuple(t.shape)}.")
        if not torch.isfinite(t).all():
            where = self.path or "a batch"
            raise ValueError(f"Input contains NaN or infinity (in {where}). Remove or impute "
                             "those rows first, e.g. with sklearn.impute.SimpleImputer.")
        return t

    def _blocks(self):
        """The data as large blocks: user batches, file blocks, or the whole array."""
        if self.is_batches:
            yield from (self._to_torch(b) for b in self.data)
        elif self.path is not None:
            row_bytes = self.n_features * self.data.dtype.itemsize
            rows = max(self.chunk_size, READ_BLOCK_BYTES // row_bytes)
            for start in range(0, self.n_samples, rows):
                yield self._to_torch(self.data[start : start + rows])
        else:
            yield self.data

    def __iter__(self):
        """Yield the rows as ``(chunk_size, d)`` tensors (a block's last chunk may be shorter)."""
        for block in self._blocks():
            for start in range(0, block.shape[0], self.chunk_size):
                yield self._checked(self._to_torch(block[start : start + self.chunk_size]))

    def head(self, max_rows: int, random_state) -> torch.Tensor:
        """Up to ``max_rows`` rows for initialisation: all rows if there are no more, else a
        uniform random subset of an array's or file's rows, or the batches' leading rows."""
        if self.is_batches:
            parts, n = [], 0
            for chunk in self:
                parts.append(chunk)
                n += chunk.shape[0]
                if n >= max_rows:
                    break
            return torch.cat(parts)[:max_rows]
        if self.n_samples <= max_rows:
            return self._checked(self._to_torch(self.data[:]))
        rng = check_random_state(random_state)
        rows = np.unique(rng.randint(0, self.n_samples, size=max_rows))  # sorted, ~max_rows
        return self._checked(self._to_torch(self.data[rows]))

    def take(self, indices) -> torch.Tensor:
        """The rows at ``indices`` (in that order), by global row number."""
        indices = np.asarray(indices)
        if not self.is_batches:
            return self._checked(self._to_torch(self.data[indices]))
        rows = [None] * len(indices)
        start = 0
        for chunk in self:
            inside = np.flatnonzero((indices >= start) & (indices < start + chunk.shape[0]))
            for pos in inside:
                rows[pos] = chunk[indices[pos] - start]
            start += chunk.shape[0]
        return torch.stack(rows)


@dataclass
class Sequences:
    """A chunk of whole sequences, padded to the longest: the unit of an HMM's (or a linear
    dynamical system's) E-step, as a block of rows is a mixture's.

    ``X[b, t]`` is step ``t`` of the chunk's ``b``-th sequence for ``t < lengths[b]`` and zero
    after it. ``shape[0]`` is the number of real timesteps, which the driver counts as rows.
    """

    X: torch.Tensor  # (B, T, d)
    lengths: torch.Tensor  # (B,) long

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.lengths.sum()), self.X.shape[-1]

    @property
    def mask(self) -> torch.Tensor:
        """(B, T) True at the real timesteps."""
        steps = torch.arange(self.X.shape[1], device=self.X.device)
        return steps < self.lengths[:, None]

    def new_zeros(self, *args, **kwargs) -> torch.Tensor:
        return self.X.new_zeros(*args, **kwargs)


class SequenceSource(DataSource):
    """The rows of ``data`` (array or ``.npy`` path, one timestep per row) cut into the
    sequences of ``lengths`` (hmmlearn's convention: consecutive runs of rows), read as
    :class:`Sequences` chunks of whole sequences, at most ``chunk_size`` timesteps (default:
    ``chunk_elements`` values) per chunk unless one sequence alone is longer.

    Under ``torch.distributed`` each rank passes its own sequences (its ``data`` and
    ``lengths``); the statistics are all-reduced as for rows. ``allow_nan`` lets NaN
    entries (missing observations) through the checks of ``.npy`` files; :meth:`head`
    gives rows for an initialisation (k-means, say) as for any :class:`DataSource`.
    """

    def __init__(self, data, lengths, *, dtype: torch.dtype, device: torch.device,
                 chunk_size=None, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
                 allow_nan: bool = False):
        super().__init__(data, dtype=dtype, device=device, chunk_size=chunk_size,
                         chunk_elements=chunk_elements)
        if self.is_batches:
            raise ValueError("Sequences are read from an array or a .npy file, not Batches.")
        self.allow_nan = allow_nan
        lengths = np.asarray([self.n_samples] if lengths is None else lengths)
        if (lengths.ndim != 1 or lengths.size == 0 or lengths.dtype.kind not in "iu"
                or (lengths < 1).any() or lengths.sum() != self.n_samples):
            raise ValueError(
                f"lengths must be positive integers summing to the {self.n_samples} rows of X "
                f"(one entry per sequence, as in hmmlearn); got {lengths.tolist()[:10]}"
                f"{' ...' if lengths.size > 10 else ''} summing to {lengths.sum()}.")
        self.lengths = lengths.astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        # Consecutive sequences per chunk, each chunk within chunk_elements when it can be.
        budget = self.chunk_size
        self.groups, group, size = [], [], 0
        for i, n in enumerate(self.lengths):
            if group and size + n > budget:
                self.groups.append(group)
                group, size = [], 0
            group.append(i)
            size += int(n)
        self.groups.append(group)

    def _checked(self, t: torch.Tensor) -> torch.Tensor:
        if self._check_chunks and self.allow_nan:
            if torch.isinf(t).any():
                raise ValueError(f"Input contains infinity (in {self.path}).")
            return t
        return super()._checked(t)

    def sequences(self, group: list[int]) -> Sequences:
        """The padded sequences of ``group`` (consecutive sequence numbers)."""
        first, last = group[0], group[-1]
        start, stop = self.starts[first], self.starts[last] + self.lengths[last]
        rows = self._checked(self._to_torch(self.data[start:stop]))  # (n, d)
        lengths = torch.as_tensor(self.lengths[first : last + 1], device=self.device)
        T = int(lengths.max())
        X = rows.new_zeros(len(group), T, self.n_features)  # (B, T, d)
        steps = torch.arange(T, device=self.device)
        mask = steps < lengths[:, None]  # (B, T)
        X[mask] = rows
        return Sequences(X, lengths)

    def __iter__(self):
        for group in self.groups:
            yield self.sequences(group)


def data_source(estimator, X, *, reset: bool, min_samples: int = 1,
                chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> DataSource:
    """The :class:`DataSource` of ``X`` for a torch estimator's ``fit`` (or ``partial_fit``).

    Arrays go through the estimator's scikit-learn validation; a ``.npy`` path or
    :class:`Batches` are checked chunk by chunk as they are read, and their rows are counted
    once here. ``reset`` records ``n_features_in_``.
    """
    kw = dict(dtype=estimator._torch_dtype, device=estimator._torch_device,
              chunk_size=estimator.chunk_size, chunk_elements=chunk_elements)
    if not isinstance(X, (str, os.PathLike, Batches)):
        return DataSource(estimator._validate_X(X, reset=reset, min_samples=min_samples), **kw)
    data = DataSource(X, **kw)
    if reset:
        estimator.n_features_in_ = data.n_features
    elif data.n_features != estimator.n_features_in_:
        raise ValueError(f"X has {data.n_features} features, but {type(estimator).__name__} "
                         f"is expecting {estimator.n_features_in_} features as input.")
    if data.n_samples is None:  # batches: count the rows once
        accumulate(data, lambda c: ({}, c.new_zeros(())))
    if data.n_samples < min_samples:
        raise ValueError(f"Found {data.n_samples} sample(s) while a minimum of {min_samples} "
                         "is required.")
    return data


def _ordered_map(fn, data: DataSource, parallel: bool, states: list | None = None):
    """``(fn(chunk), len(chunk))`` for each chunk, in chunk order (``fn(chunk, states[i])``
    for the ``i``-th chunk when ``states`` is given; missing dicts are appended empty).

    With ``parallel`` on CPU, chunks are processed by one Python thread per torch thread,
    each running torch (and numpy's BLAS) single-threaded, with at most two chunks per
    thread in flight. Whole chunks per thread need no synchronisation inside an operation,
    so this is much faster than torch's per-operation parallelism on small chunks, above
    all on a busy machine; results are combined in chunk order, so they do not depend on
    the thread count.
    """
    def args_of():
        for i, chunk in enumerate(data):
            if states is None:
                yield (chunk,)
                continue
            if i == len(states):
                states.append({})
            yield chunk, states[i]

    cpu = data.device.type == "cpu"
    workers = torch.get_num_threads() if parallel and cpu else 1
    if workers == 1:
        # One chunk at a time, numpy's BLAS still on one thread: its threads would spin on
        # the thin per-chunk GEMMs (a 20-iteration GMM fit took 78 s instead of 8 s on two
        # busy cores with torch on one thread and OpenBLAS on two).
        with blas_threads(1) if cpu else contextlib.nullcontext():
            for args in args_of():
                yield fn(*args), args[0].shape[0]
        return
    with torch_threads(1), blas_threads(1), \
            ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for args in args_of():
            pending.append((pool.submit(fn, *args), args[0].shape[0]))
            if len(pending) >= 2 * workers:
                future, size = pending.popleft()
                yield future.result(), size
        while pending:
            future, size = pending.popleft()
            yield future.result(), size


def accumulate(data: DataSource, fn: Callable[..., tuple[dict, torch.Tensor]], *,
               parallel: bool = True, states: list | None = None):
    """Sum ``fn(chunk) = (stats, log_lik_sum)`` over every chunk and every rank.

    Tensors are summed in float64, in chunk order; :class:`Candidates` are merged and
    :class:`Rows` concatenated (this rank's rows only). ``fn`` runs on several threads at
    once unless ``parallel=False`` (pass that when it is not a function of its chunk alone,
    e.g. when it draws random numbers in row order). With ``states`` (a list the caller keeps
    across passes over replayable data), ``fn`` is called as ``fn(chunk, state)`` with the
    ``i``-th chunk's dict ``states[i]``; each dict is used by one thread at a time. The
    caller may fill the dicts beforehand (per-row values carried beside an array's rows:
    the ``i``-th chunk is rows ``[i chunk_size, (i + 1) chunk_size)``).
    Returns ``(stats, log_lik_sum, n_samples)`` with the float64 totals.
    """
    totals: dict = {}
    ll = torch.zeros((), dtype=torch.float64, device=data.device)
    n = 0
    for (stats, chunk_ll), size in _ordered_map(fn, data, parallel, states):
        ll = ll + chunk_ll.to(torch.float64)
        n += size
        for key, value in stats.items():
            if isinstance(value, Candidates):
                totals[key] = value if key not in totals else totals[key].merge(value)
            elif isinstance(value, Rows):
                totals.setdefault(key, []).append(value.values)
            else:
                value = value.to(torch.float64)
                totals[key] = value if key not in totals else totals[key] + value
    for key, value in totals.items():
        if isinstance(value, list):
            totals[key] = Rows(torch.cat(value))
    keys = [k for k, v in totals.items() if isinstance(v, torch.Tensor)]
    n_t = torch.tensor(float(n), dtype=torch.float64, device=data.device)
    reduced = distributed.all_reduce_sum([totals[k] for k in keys] + [ll, n_t])
    totals.update(zip(keys, reduced[:-2]))
    for key, value in totals.items():
        if isinstance(value, Candidates):
            totals[key] = value.all_gather()
    n_total = int(round(float(reduced[-1])))
    if data.is_batches:
        data.n_samples = n_total
    return totals, reduced[-2], n_total


class EMMixin:
    """The EM loop of :mod:`bayesdl.core.em` for an estimator with ``n_init``, ``max_iter``,
    ``tol``, ``warm_start``, ``verbose`` and ``random_state`` parameters."""

    def _compute_lower_bound(self, stats: dict, log_lik_sum: torch.Tensor, n_samples: int):
        # sklearn's mixtures converge on the mean log-likelihood per sample.
        return float(log_lik_sum) / n_samples

    def _converged(self, change: float) -> bool:
        return abs(change) < self.tol

    # True when _compute_lower_bound gives the bound of the parameters the M-step has just
    # set (see the module docstring: which run of n_init is kept).
    _bound_after_m_step = False

    def _final_bound(self, data: DataSource, e_step, states: list | None) -> float:
        """The bound of the current (final) parameters: one more E-step pass."""
        stats, ll, n = accumulate(data, e_step, states=states)
        return self._compute_lower_bound(stats, ll, n)

    def _fit_em(self, data: DataSource):
        """Run EM on ``data``; sets the best parameters and the convergence attributes."""
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)
        best_score, best = -math.inf, None
        stateful = getattr(self, "_e_step_stats_stateful", None) if data.replayable else None
        for init in range(n_init):
            if do_init:
                self._initialize(data, random_state)
            # Every rank starts from rank 0's initial parameters; setting them also lets the
            # model precompute its E-step constants (after a load, say, for warm_start).
            self._set_parameters(tuple(distributed.broadcast(list(self._get_parameters()))))
            bound = -math.inf if do_init else self.lower_bound_
            states: list | None = None if stateful is None else []  # this run's only
            e_step = self._e_step_stats if stateful is None else stateful
            bounds, converged, n_iter = [], False, 0
            desc = f"{type(self).__name__} init {init + 1}/{n_init}"
            show = bool(self.verbose) and distributed.rank() == 0
            with tqdm(total=self.max_iter, desc=desc, disable=not show, leave=True) as bar:
                for n_iter in range(1, self.max_iter + 1):
                    previous = bound
                    stats, ll, n = accumulate(data, e_step, states=states)
                    self._m_step(stats)
                    bound = self._compute_lower_bound(stats, ll, n)
                    bounds.append(bound)
                    bar.update(1)
                    bar.set_postfix(lower_bound=f"{bound:.6g}", change=f"{bound - previous:.3g}")
                    if self._converged(bound - previous):
                        converged = True
                        break
            # Rank the runs by the bound of their final parameters (module docstring).
            score = bound
            if n_init > 1 and not self._bound_after_m_step and self.max_iter > 0:
                score = self._final_bound(data, e_step, states)
            if best is None or score > best_score:
                best_score = score
                best = (self._get_parameters(), n_iter, bound, bounds, converged)
        params, self.n_iter_, self.lower_bound_, self.lower_bounds_, self.converged_ = best
        self._set_parameters(params)
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                f"{type(self).__name__}: the best initialisation did not converge in "
                f"max_iter={self.max_iter} iterations (tol={self.tol}). Increase max_iter or "
                "tol, try other initial parameters, or check the data for duplicates or "
                "degenerate features.",
                ConvergenceWarning,
            )
        return self
