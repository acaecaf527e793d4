"""How close are generated samples to real ones? Distances between feature distributions.

Every metric maps both sets through a feature extractor and compares the feature clouds:

- :func:`frechet_classifier_distance` -- the Fréchet distance between Gaussians fitted to the
  two clouds (FID, Heusel et al. 2017, with the shipped digits classifier in place of
  Inception);
- :func:`kernel_classifier_distance` -- the unbiased squared MMD with a cubic polynomial
  kernel and its standard error (KID, Bińkowski et al. 2018);
- :func:`precision_recall` -- the fraction of each set inside the other's k-nearest-neighbour
  manifold (Kynkäänniemi et al. 2019): precision is fidelity, recall is coverage;
  :func:`density_coverage` -- their outlier-robust versions (Naeem et al. 2020);
- :func:`class_histogram` and :func:`conditional_accuracy` -- how the shipped classifier
  labels samples (mode coverage; whether class-conditional samples show their class);
- :func:`sample_metrics` -- all of them at once, beside the same metrics between two halves
  of the real data (the floor a perfect model would reach with that many samples), and
  :func:`metrics_table` to put several models' results in a report table.

``features=None`` uses :func:`bayesdl.metrics.digits_features` (8x8 digits in [0, 1]); any
callable mapping an ``(N, ...)`` array to ``(N, F)`` features works for other data (it
receives the array exactly as given, numpy or torch). To score several metrics on the same
sets without recomputing features, compute them once (``digits_features(x)``) and pass
``features=lambda f: f``. All estimates are computed in float64.
"""

from __future__ import annotations

import warnings
from typing import Callable, Mapping

import numpy as np
import torch

from .digits_classifier import as_digit_images, digits_features, digits_logits

# entries of a pairwise-distance or kernel block held at once: 1M float64 (8 MiB; cache-sized
# blocks measured 1.5-1.7x faster than 128 MiB ones)
_BLOCK_ENTRIES = 1 << 20
# the largest kernel matrix formed whole for KID: 4M float64 entries (32 MiB; 2,048 samples)
_FULL_KERNEL_ENTRIES = 1 << 22


def _n_rows(x, name: str) -> int:
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) < 1:
        raise ValueError(f"{name} must be an array of samples (N, ...), got {type(x).__name__}.")
    return int(shape[0])


def _as_features(x, features: Callable | None, name: str) -> np.ndarray:
    """``features(x)`` (or the digits classifier's) as a checked float64 array ``(N, F)``."""
    from .._base import check_dense

    check_dense(x, name)
    if features is None:
        return digits_features(as_digit_images(x, name))
    if not callable(features):
        raise TypeError("features must be a callable mapping (N, ...) samples to (N, F) "
                        "features, or None for the digits classifier; got "
                        f"{type(features).__name__}.")
    n = _n_rows(x, name)
    f = features(x)
    if hasattr(f, "detach"):  # a torch tensor
        f = f.detach().cpu().numpy()
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] != n:
        raise ValueError(f"features({name}) must return a 2-D array (N, F) with N = {n} rows "
                         f"(one per sample), got shape {f.shape}.")
    if not np.isfinite(f).all():
        raise ValueError(f"features({name}) returned NaN or infinite values; check {name} "
                         "for NaN and the feature extractor for overflow.")
    return f


def _check_sizes(fx: np.ndarray, fy: np.ndarray, minimum: int, what: str) -> None:
    if fx.shape[1] != fy.shape[1]:
        raise ValueError(f"the two feature sets have different dimensions, {fx.shape[1]} and "
                         f"{fy.shape[1]}; use the same feature extractor for both.")
    for name, f in (("real", fx), ("generated", fy)):
        if len(f) < minimum:
            raise ValueError(f"{what} needs at least {minimum} {name} samples, got {len(f)}.")


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``||a_i - b_j||^2`` ``(len(a), len(b))``, clipped at 0 against rounding."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def _row_blocks(n_rows: int, n_cols: int):
    step = max(1, _BLOCK_ENTRIES // max(n_cols, 1))
    return (slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step))


# -- Fréchet distance ---------------------------------------------------------------------------
def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet (2-Wasserstein) distance squared between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    Dowson & Landau (1982): ``d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})``.
    The trace of the square root is computed from symmetric matrices only:
    ``Tr (S1 S2)^{1/2} = sum_i sqrt(lambda_i)`` with ``lambda_i`` the eigenvalues of
    ``S1^{1/2} S2 S1^{1/2}`` (similar to ``S1 S2``), which are real and non-negative for
    positive semi-definite covariances; rounding below zero is clipped. Unlike a general
    ``sqrtm(S1 @ S2)`` this needs no complex arithmetic and stays accurate for singular or
    near-singular covariances (fewer samples than features, dead ReLU units).
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    s1, s2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    if not (mu1.shape == mu2.shape and mu1.ndim == 1
            and s1.shape == s2.shape == (mu1.size, mu1.size)):
        raise ValueError(f"means must be (F,) and covariances (F, F) with one F, got "
                         f"{mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}.")
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # S1^{1/2}, (F, F)
    lam = np.linalg.eigvalsh(root1 @ ((s2 + s2.T) / 2) @ root1)  # spectrum of S1 S2
    tr_sqrt = np.sqrt(np.clip(lam, 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt, 0.0))


def frechet_classifier_distance(real, generated, features: Callable | None = None) -> float:
    """Fréchet distance between Gaussians fitted to the features of two sample sets (FID).

    Heusel et al. (2017), "GANs trained by a two time-scale update rule converge to a local
    Nash equilibrium", eq. 6: with ``(m_r, C_r)`` and ``(m_g, C_g)`` the feature means and
    covariances (unbiased, ``N - 1``),

        FCD = ||m_r - m_g||^2 + Tr(C_r + C_g - 2 (C_r C_g)^{1/2}),

    computed by :func:`frechet_distance`. Features are the shipped digits classifier's
    penultimate layer unless ``features`` is given. The estimate is biased upwards for finite
    samples (the bias shrinks like 1/N; Chong & Forsyth 2020, "Effectively unbiased FID and
    Inception score and where to find them"), so compare models only at equal sample sizes
    and beside the real-data floor (:func:`sample_metrics`).

    Needs at least 2 samples per set; with no more samples than features (N <= F) the
    covariances are singular and the bias dominates, which is warned about: use N > F
    (the digits features have F = 64), ideally N >= 10 F.
    """
    fr = _as_features(real, features, "real")
    fg = _as_features(generated, features, "generated")
    _check_sizes(fr, fg, 2, "the Fréchet distance (a covariance)")
    n_min, dim = min(len(fr), len(fg)), fr.shape[1]
    if n_min <= dim:
        warnings.warn(f"the Fréchet distance from {n_min} samples of {dim}-dimensional features "
                      "uses singular covariances and is dominated by its small-sample bias; use "
                      f"more than {dim} samples per set (ideally {10 * dim}).", stacklevel=2)
    return frechet_distance(fr.mean(0), np.cov(fr, rowvar=False), fg.mean(0),
                            np.cov(fg, rowvar=False))


# -- kernel distance ----------------------------------------------------------------------------
def _cubic_kernel(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``k(a, b) = (a.b / d + 1)^3`` of all pairs: ``(..., m, d), (..., m', d) -> (..., m, m')``."""
    K = torch.matmul(A, B.transpose(-1, -2))  # inner products
    return K.div_(A.shape[-1]).add_(1.0).pow_(3)  # in place: the kernels are the memory peak


def _precompute_kernels(n_x: int, n_y: int, d: int, n_subsets: int, m: int) -> bool:
    """Whether to form the three kernel matrices whole and get every subset's sums by products
    with the subsets' indicator matrices: when they fit in memory and cost fewer operations,
    ``(n_x^2 + n_y^2 + n_x n_y)(d + S)``, than the subsets' own blocks, ``3 S m^2 d`` (the
    subsets overlap when they cover the data several times, as the default 100 subsets do)."""
    fits = max(n_x, n_y) ** 2 <= _FULL_KERNEL_ENTRIES
    full_cost = (n_x * n_x + n_y * n_y + n_x * n_y) * (d + n_subsets)
    return fits and full_cost < 3 * n_subsets * m * m * d


def _polynomial_mmd2(fx: np.ndarray, fy: np.ndarray, blocks_x, blocks_y) -> np.ndarray:
    """Unbiased MMD^2 of every pair of index blocks ``blocks_x[s]``, ``blocks_y[s]`` (S, m).

    Gretton et al. (2012), eq. 3 (MMD^2_u) with k(x, y) = (x.y / d + 1)^3:
    ``1/(m(m-1)) sum_{i!=j} [k(x_i,x_j) + k(y_i,y_j)] - 2/m^2 sum_{i,j} k(x_i,y_j)``.
    """
    S, m = blocks_x.shape
    tx, ty = torch.from_numpy(fx), torch.from_numpy(fy)
    bx, by = torch.from_numpy(np.asarray(blocks_x)), torch.from_numpy(np.asarray(blocks_y))
    if _precompute_kernels(len(fx), len(fy), fx.shape[1], S, m):
        # every subset's kernel sum from the full matrices: with W the (n, S) indicator of
        # the subsets, sum_{i,j in s} K_ij = (W * (K W)).sum(0)[s] -- products, no gathers
        Wx = torch.zeros(len(fx), S, dtype=torch.float64).scatter_(0, bx.T, 1.0)  # (n_x, S)
        Wy = torch.zeros(len(fy), S, dtype=torch.float64).scatter_(0, by.T, 1.0)  # (n_y, S)
        kxx, kyy = _cubic_kernel(tx, tx), _cubic_kernel(ty, ty)  # (n_x, n_x), (n_y, n_y)
        within = ((Wx * (kxx @ Wx)).sum(0) - torch.diagonal(kxx) @ Wx
                  + (Wy * (kyy @ Wy)).sum(0) - torch.diagonal(kyy) @ Wy)  # (S,)
        del kxx, kyy
        between = (Wx * (_cubic_kernel(tx, ty) @ Wy)).sum(0)  # (S,)
        return (within / (m * (m - 1)) - 2.0 * between / (m * m)).numpy()
    out = torch.empty(S, dtype=torch.float64)
    step = max(1, _BLOCK_ENTRIES // (m * m))  # subsets per batch
    for lo in range(0, S, step):
        X, Y = tx[bx[lo:lo + step]], ty[by[lo:lo + step]]  # (s, m, d)
        kxx, kyy = _cubic_kernel(X, X), _cubic_kernel(Y, Y)  # (s, m, m)
        within = (kxx.sum((1, 2)) - torch.diagonal(kxx, dim1=1, dim2=2).sum(1)
                  + kyy.sum((1, 2)) - torch.diagonal(kyy, dim1=1, dim2=2).sum(1))
        out[lo:lo + step] = within / (m * (m - 1)) - 2.0 * _cubic_kernel(X, Y).sum((1, 2)) / (m * m)
    return out.numpy()


def kernel_classifier_distance(real, generated, features: Callable | None = None,
                               n_subsets: int = 100, subset_size: int | None = None,
                               seed: int | None = 0) -> tuple[float, float]:
    """Kernel (classifier) distance: unbiased MMD^2 with a cubic kernel and its standard error.

    Bińkowski et al. (2018), "Demystifying MMD GANs", section 5 (KID): the squared maximum
    mean discrepancy (Gretton et al. 2012, eq. 3) between the feature distributions, with the
    polynomial kernel ``k(x, y) = (x.y / d + 1)^3`` (d the feature dimension), estimated
    without bias:

        MMD^2_u = 1/(m(m-1)) sum_{i!=j} [k(x_i, x_j) + k(y_i, y_j)] - 2/m^2 sum_{i,j} k(x_i, y_j).

    As in Bińkowski et al. the estimate is averaged over ``n_subsets`` subsets of
    ``subset_size`` samples from each set (default ``min(1000, n // 4)``, n the smaller set's
    size). Here the subsets are the blocks of random partitions of the samples (as many
    partitions as ``n_subsets`` needs), so the subsets of one partition are disjoint and their
    estimates independent. The value is their mean (unbiased: E = MMD^2 >= 0; it can be
    slightly negative when the distributions are equal). The standard error is the
    standard deviation of the subset estimates over the square root of the number of disjoint
    subsets, ``min(n_subsets, n // subset_size)``: exact for one partition, and an upper bound
    when several partitions are averaged (their mean varies less than one partition's).

    Returns ``(value, standard_error)``; the error is NaN when there are not two disjoint
    subsets (``n_subsets`` = 1 or ``subset_size`` > n / 2). ``seed`` fixes the partitions.
    """
    fr = _as_features(real, features, "real")
    fg = _as_features(generated, features, "generated")
    _check_sizes(fr, fg, 2, "the kernel distance (pairs of samples)")
    n = min(len(fr), len(fg))
    m = max(min(1000, n // 4), 2) if subset_size is None else int(subset_size)
    if not 2 <= m <= n:
        raise ValueError(f"subset_size must be between 2 and the smaller set's size {n}, got "
                         f"{subset_size}.")
    if int(n_subsets) < 1:
        raise ValueError(f"n_subsets must be a positive integer, got {n_subsets}.")
    n_subsets = int(n_subsets)
    rng = np.random.default_rng(seed)
    per_partition = n // m
    n_partitions = -(-n_subsets // per_partition)

    def blocks(size):  # (n_subsets, m): blocks of repeated random partitions of range(size)
        parts = [rng.permutation(size)[:per_partition * m].reshape(per_partition, m)
                 for _ in range(n_partitions)]
        return np.concatenate(parts)[:n_subsets]

    estimates = _polynomial_mmd2(fr, fg, blocks(len(fr)), blocks(len(fg)))  # (n_subsets,)
    n_independent = min(n_subsets, per_partition)
    se = estimates.std(ddof=1) / np.sqrt(n_independent) if n_independent > 1 else float("nan")
    return float(estimates.mean()), float(se)


# -- precision and recall -----------------------------------------------------------------------
def _neighbour_inputs(real, generated, features, k, what: str):
    """Both feature sets and ``k``, checked for a k-nearest-neighbour metric."""
    fr = _as_features(real, features, "real")
    fg = _as_features(generated, features, "generated")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}.")
    _check_sizes(fr, fg, k + 1, f"{what} with k={k} (a k-th neighbour)")
    return fr, fg, k


def _knn_radii(f: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each row to its k-th nearest other row ``(N,)``."""
    radii = np.empty(len(f))
    for rows in _row_blocks(len(f), len(f)):
        d = _squared_distances(f[rows], f)  # (b, N); column of the row itself is ~0
        radii[rows] = np.partition(d, k, axis=1)[:, k]  # index 0 is the row itself
    return radii


def _coverage(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> float:
    """Fraction of ``points`` inside the union of balls ``B(centres_i, sqrt(radii_i))``."""
    inside = np.empty(len(points), dtype=bool)
    for rows in _row_blocks(len(points), len(centres)):
        inside[rows] = (_squared_distances(points[rows], centres) <= radii[None, :]).any(1)
    return float(inside.mean())


def precision_recall(real, generated, features: Callable | None = None,
                     k: int = 3) -> tuple[float, float]:
    """Improved precision and recall for distributions (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its feature vectors, each ball reaching
    that sample's k-th nearest neighbour within its own set (eq. 1-2 of the paper):
    ``f(phi, Phi) = 1`` if ``||phi - phi'|| <= ||phi' - NN_k(phi', Phi)||`` for some
    ``phi'`` in ``Phi``. Then

        precision = mean over generated g of f(g, Phi_real)   (samples that look real),
        recall    = mean over real r of f(r, Phi_generated)   (real data the model covers).

    Identical sets give (1, 1); sets far apart give (0, 0). ``k`` = 3 is the paper's
    choice. Cost O(N_r N_g F) time and bounded memory (distances in blocks).

    Pitfall: one real outlier has a wide ball, which can hold many poor samples, so precision
    can stay well above 0 for bad models (uniform noise scores 0.3-0.7 against 179 test
    digits, whose floor is 0.9); recall, and :func:`density_coverage` (Naeem et al. 2020),
    are the more telling numbers there.
    """
    fr, fg, k = _neighbour_inputs(real, generated, features, k, "precision and recall")
    precision = _coverage(fg, fr, _knn_radii(fr, k))
    recall = _coverage(fr, fg, _knn_radii(fg, k))
    return precision, recall


_COVERAGE_K = 5  # Naeem et al. (2020)'s neighbourhood size


def density_coverage(real, generated, features: Callable | None = None,
                     k: int = _COVERAGE_K) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), the outlier-robust precision and recall.

    Only the real samples' k-NN balls are used (radius r_i = distance from real x_i to its
    k-th nearest real neighbour), so one outlier cannot inflate them as it does precision:

        density  = 1/(k M) sum_j sum_i 1[||y_j - x_i|| <= r_i]   (eq. 3; about 1 for a
                   perfect model, can exceed 1 where samples crowd the dense regions),
        coverage = 1/N sum_i 1[some y_j lies within r_i of x_i]  (eq. 4; in [0, 1]).

    ``k`` = 5 is the paper's choice. Identical sets give coverage 1; sets far apart (0, 0).
    """
    fr, fg, k = _neighbour_inputs(real, generated, features, k, "density and coverage")
    radii = _knn_radii(fr, k)  # (N,)
    counts = np.empty(len(fr))  # generated samples in each real ball
    for rows in _row_blocks(len(fr), len(fg)):
        counts[rows] = (_squared_distances(fr[rows], fg) <= radii[rows, None]).sum(1)
    return float(counts.sum() / (k * len(fg))), float((counts > 0).mean())


# -- the shipped classifier's view --------------------------------------------------------------
def _class_scores(x, classifier: Callable | None) -> np.ndarray:
    """Class scores ``(N, K)`` of ``x`` (logits or probabilities; only their argmax counts)."""
    scores = digits_logits(x) if classifier is None else classifier(x)
    if hasattr(scores, "detach"):
        scores = scores.detach().cpu().numpy()
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[0] != _n_rows(x, "generated"):
        raise ValueError(f"classifier(generated) must return class scores (N, K), got shape "
                         f"{scores.shape}.")
    return scores


def class_histogram(generated, classifier: Callable | None = None) -> np.ndarray:
    """Fraction of ``generated`` samples assigned to each class ``(K,)`` (sums to 1).

    A model that covers every mode of the digits gives about 0.1 per class; a collapsed
    model puts its mass on a few. ``classifier`` maps samples to class scores ``(N, K)``
    (default: the shipped digits classifier, K = 10).
    """
    scores = _class_scores(generated, classifier)  # (N, K)
    counts = np.bincount(scores.argmax(1), minlength=scores.shape[1])
    return counts / counts.sum()


def conditional_accuracy(generated, labels, classifier: Callable | None = None) -> float:
    """Fraction of class-conditional samples that the classifier assigns to the class asked
    for (``labels`` (N,) integer codes 0..K-1, one per sample of ``generated``)."""
    labels = np.asarray(labels)
    n = _n_rows(generated, "generated")
    if labels.shape != (n,):
        raise ValueError(f"labels must be 1-D with one entry per generated sample ({n}), got "
                         f"shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class codes, got dtype {labels.dtype}.")
    return float((_class_scores(generated, classifier).argmax(1) == labels).mean())


# -- everything at once ---------------------------------------------------------------------------
METRICS = ("fcd", "kid", "kid_se", "precision", "recall", "density", "coverage")


def _distances(fa: np.ndarray, fb: np.ndarray, k: int, seed: int) -> dict:
    identity = lambda f: f  # noqa: E731 (the features are computed once, outside)
    kid, kid_se = kernel_classifier_distance(fa, fb, identity, seed=seed)
    precision, recall = precision_recall(fa, fb, identity, k=k)
    density, coverage = density_coverage(fa, fb, identity)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the floor shares the bias; it is what the floor shows
        fcd = frechet_classifier_distance(fa, fb, identity)
    return {"fcd": fcd, "kid": kid, "kid_se": kid_se, "precision": precision, "recall": recall,
            "density": density, "coverage": coverage}


def sample_metrics(real, generated, labels=None, features: Callable | None = None,
                   seed: int = 0, k: int = 3, n_splits: int = 5) -> dict:
    """All sample-quality metrics of ``generated`` against ``real``, with the real-data floor.

    ``real`` (held-out data, e.g. the test split) is split at random into halves A and B.
    The floor is each metric between A and B: what a perfect model reaches with that many
    samples (FCD and KID above 0 by sampling noise, precision and recall below 1). The
    model's metrics compare A with a random subset of ``generated`` of B's size, so both rows
    have the same sample sizes (the Fréchet distance's bias depends on them). Both are
    averaged over ``n_splits`` random halvings: with a few hundred real samples the floor of
    one halving varies a lot (FCD 15-39 over halvings of the 359 test digits). The halvings
    depend only on ``real`` and ``seed``, so models compared on the same data share the floor.

    Returns a dict: ``fcd``, ``kid``, ``kid_se``, ``precision``, ``recall`` (with ``k``
    neighbours), ``density``, ``coverage`` (with Naeem et al.'s 5) and the same with
    ``_floor`` appended, ``n_real`` (= |A| = |B|), ``n_generated`` (used per halving); with
    the shipped classifier (``features=None``) also ``class_histogram`` (K,) of all of
    ``generated``; with ``labels`` (the class each sample was generated for)
    ``conditional_accuracy``. ``kid_se`` is the mean of the halvings' standard errors, an
    upper bound for that of their average. Needs at least 2 (k + 1) real samples and as many
    generated ones as half the real set.
    """
    n_real, n_gen = _n_rows(real, "real"), _n_rows(generated, "generated")
    half, neighbours = n_real // 2, max(int(k), _COVERAGE_K)
    if half < neighbours + 1:
        raise ValueError(f"sample_metrics needs at least {2 * (neighbours + 1)} real samples "
                         f"(two halves for the floor), got {n_real}.")
    if n_gen < half:
        raise ValueError(f"sample_metrics compares {half} generated samples with half of the "
                         f"{n_real} real ones; draw at least {half} samples, got {n_gen}.")
    if int(n_splits) < 1:
        raise ValueError(f"n_splits must be a positive integer, got {n_splits}.")
    f_real = _as_features(real, features, "real")
    f_gen = _as_features(generated, features, "generated")
    # separate streams: the halvings (so the floor) depend on the real data and seed only
    rng_real, rng_gen = np.random.default_rng(seed).spawn(2)
    model, floor = [], []
    for s in range(int(n_splits)):
        perm = rng_real.permutation(n_real)
        fa, fb = f_real[perm[:half]], f_real[perm[half:2 * half]]
        fg = f_gen[rng_gen.permutation(n_gen)[:half]]
        model.append(_distances(fa, fg, k, seed + s))
        floor.append(_distances(fa, fb, k, seed + s))
    out = {"n_real": half, "n_generated": half}
    out.update({key: float(np.mean([r[key] for r in model])) for key in METRICS})
    out.update({f"{key}_floor": float(np.mean([r[key] for r in floor])) for key in METRICS})
    if features is None:
        out["class_histogram"] = class_histogram(generated)
    if labels is not None:
        out["conditional_accuracy"] = conditional_accuracy(generated, labels)
    return out


_LABELS = {"fcd": "FCD", "kid": "KID", "precision": "precision", "recall": "recall",
           "density": "density", "coverage": "coverage"}


def metrics_table(results: Mapping[str, dict]) -> dict[str, str]:
    """Flatten ``{model name: sample_metrics(...)}`` into ``{"<model> <metric>": text}``.

    Each entry reads ``value (floor value)`` (KID as ``value ± se``), ready for a report
    section's ``table`` or for printing one line per entry.
    """
    table = {}
    for name, r in results.items():
        for key, label in _LABELS.items():
            if key == "kid":
                text = (f"{r['kid']:.4g} ± {r['kid_se']:.2g} "
                        f"(floor {r['kid_floor']:.4g} ± {r['kid_se_floor']:.2g})")
            else:
                text = f"{r[key]:.4g} (floor {r[key + '_floor']:.4g})"
            table[f"{name} {label}"] = text
        if "conditional_accuracy" in r:
            table[f"{name} conditional accuracy"] = f"{r['conditional_accuracy']:.3f}"
        if "class_histogram" in r:
            hist = r["class_histogram"]
            table[f"{name} class histogram"] = " ".join(f"{p:.2f}" for p in hist)
    return table
