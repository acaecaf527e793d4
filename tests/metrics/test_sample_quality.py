"""Sample-quality metrics against closed forms, scipy and naive loops."""

import numpy as np
import pytest
import scipy.linalg
import torch

from bayesdl.metrics import (class_histogram, conditional_accuracy, density_coverage,
                             frechet_classifier_distance,
                             frechet_distance, kernel_classifier_distance, metrics_table,
                             precision_recall, sample_metrics)
from bayesdl.metrics.sample_quality import _polynomial_mmd2, _precompute_kernels
from bayesdl.metrics.train_classifier import digits_split
from tests._threads import one_torch_thread  # noqa: F401 (autouse fixture)


def identity(x):
    return x


def random_spd(rng, d, rank=None):
    A = rng.normal(size=(d, rank or d))
    return A @ A.T / d


@pytest.fixture(scope="module")
def digits():
    X, y, (train, _, test) = digits_split()
    X = X[:, 0].numpy().astype(np.float64)  # (N, 8, 8) in [0, 1]
    return X[train], y[train].numpy(), X[test], y[test].numpy()


# -- Fréchet distance ---------------------------------------------------------------------------
def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    for d in (1, 3, 10):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = random_spd(rng, d), random_spd(rng, d)
        reference = (np.sum((mu1 - mu2) ** 2)
                     + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))
        np.testing.assert_allclose(frechet_distance(mu1, s1, mu2, s2), reference, rtol=1e-9)


def test_frechet_distance_closed_form_for_singular_diagonal_covariances():
    # commuting covariances: d^2 = ||mu1 - mu2||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2,
    # also when both are singular (zero variance in the last coordinates)
    a, b = np.array([4.0, 1.0, 0.0, 0.0]), np.array([1.0, 9.0, 0.0, 0.0])
    mu1, mu2 = np.array([1.0, 0, 0, 0]), np.array([0, 2.0, 0, 0])
    expected = 1 + 4 + (2 - 1) ** 2 + (1 - 3) ** 2
    np.testing.assert_allclose(frechet_distance(mu1, np.diag(a), mu2, np.diag(b)), expected,
                               rtol=1e-12)
    # rank-deficient full covariances (N < F samples): equal sets are at distance 0
    s = random_spd(np.random.default_rng(1), 8, rank=3)
    assert abs(frechet_distance(mu1[:1].repeat(8), s, mu1[:1].repeat(8), s)) < 1e-10


def test_frechet_classifier_distance_of_gaussian_samples():
    rng = np.random.default_rng(0)
    d, n = 3, 20000
    mu1, mu2 = np.zeros(d), np.array([1.0, -0.5, 0.0])
    s1, s2 = random_spd(rng, d) + np.eye(d), random_spd(rng, d) + 0.5 * np.eye(d)
    x = rng.multivariate_normal(mu1, s1, n)
    y = torch.as_tensor(rng.multivariate_normal(mu2, s2, n))  # torch input works as well
    value = frechet_classifier_distance(x, y, features=identity)
    # exactly the plug-in formula on the sample moments
    plug_in = frechet_distance(x.mean(0), np.cov(x.T), y.numpy().mean(0), np.cov(y.numpy().T))
    np.testing.assert_allclose(value, plug_in, rtol=1e-12)
    # and the population distance to Monte-Carlo error (sd of the estimate ~ 0.02 here)
    np.testing.assert_allclose(value, frechet_distance(mu1, s1, mu2, s2), atol=0.08)


def test_frechet_warns_with_fewer_samples_than_features():
    rng = np.random.default_rng(0)
    with pytest.warns(UserWarning, match="more than 10 samples"):
        frechet_classifier_distance(rng.normal(size=(8, 10)), rng.normal(size=(8, 10)), identity)


# -- kernel distance ----------------------------------------------------------------------------
def naive_mmd2(x, y):
    d, m = x.shape[1], len(x)
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / m ** 2


@pytest.mark.parametrize("n_subsets, m, precomputed", [(5, 12, False), (20, 20, True)])
def test_kid_blocks_equal_naive_double_loop(n_subsets, m, precomputed):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 4)), rng.normal(0.3, 1.2, size=(25, 4))
    bx = np.stack([rng.permutation(30)[:m] for _ in range(n_subsets)])
    by = np.stack([rng.permutation(25)[:m] for _ in range(n_subsets)])
    # few small subsets: each block's kernels; many large ones: the full kernel matrices
    assert _precompute_kernels(30, 25, 4, n_subsets, m) == precomputed
    expected = [naive_mmd2(x[i], y[j]) for i, j in zip(bx, by)]
    np.testing.assert_allclose(_polynomial_mmd2(x, y, bx, by), expected, rtol=1e-10)
    # one subset of every sample: the full-sample U-statistic, no standard error
    value, se = kernel_classifier_distance(x[:25], y, identity, n_subsets=1, subset_size=25)
    np.testing.assert_allclose(value, naive_mmd2(x[:25], y), rtol=1e-10)
    assert np.isnan(se)


def test_kid_is_unbiased_and_its_standard_error_is_calibrated():
    rng = np.random.default_rng(0)
    reps, n, d = 60, 200, 5
    same, same_se, shifted, shifted_se = [], [], [], []
    for r in range(reps):
        x, y, z = rng.normal(size=(3, n, d))
        v, se = kernel_classifier_distance(x, y, identity, seed=r)
        same.append(v), same_se.append(se)
        v, se = kernel_classifier_distance(x, z + 0.3, identity, seed=r)
        shifted.append(v), shifted_se.append(se)
    same, shifted = np.array(same), np.array(shifted)
    # equal distributions: the estimates average to 0 within their Monte-Carlo error
    assert abs(same.mean()) < 3 * same.std(ddof=1) / np.sqrt(reps)
    # the reported standard error matches the spread over independent data sets within 35%
    # (measured 0.97-1.06 over three seeds); under equality it is conservative (1.5-1.9)
    assert 0.65 < np.mean(shifted_se) / shifted.std(ddof=1) < 1.35
    assert 0.8 < np.mean(same_se) / same.std(ddof=1) < 3.0
    # different distributions: MMD^2 > 0 by several standard errors (measured 3.0-3.3)
    assert shifted.mean() > 2 * np.mean(shifted_se)


def test_kid_options_are_checked():
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="subset_size must be between 2"):
        kernel_classifier_distance(x, x, identity, subset_size=21)
    with pytest.raises(ValueError, match="n_subsets must be a positive"):
        kernel_classifier_distance(x, x, identity, n_subsets=0)


# -- precision and recall -----------------------------------------------------------------------
def naive_precision_recall(real, gen, k):
    def radii(points):  # distance to the k-th nearest other point, one point at a time
        return [sorted(np.linalg.norm(p - q) for j, q in enumerate(points) if j != i)[k - 1]
                for i, p in enumerate(points)]

    def inside(p, points, r):
        return any(np.linalg.norm(p - q) <= r_q for q, r_q in zip(points, r))

    r_real, r_gen = radii(real), radii(gen)
    return (np.mean([inside(g, real, r_real) for g in gen]),
            np.mean([inside(x, gen, r_gen) for x in real]))


def test_precision_recall_equal_naive_loop_and_known_cases():
    rng = np.random.default_rng(0)
    real, gen = rng.normal(size=(40, 3)), rng.normal(0.7, 0.6, size=(35, 3))
    for k in (1, 3, 5):
        np.testing.assert_allclose(precision_recall(real, gen, identity, k=k),
                                   naive_precision_recall(real, gen, k), rtol=0, atol=0)
    assert precision_recall(real, real, identity) == (1.0, 1.0)
    assert precision_recall(real, gen + 100.0, identity) == (0.0, 0.0)
    # two far-apart clusters, a generator that reproduces only the first: precision 1, recall 1/2
    two = np.concatenate([real[:20], real[20:] + 100.0])
    assert precision_recall(two, real[:20], identity, k=3) == (1.0, 0.5)


def naive_density_coverage(real, gen, k):
    counts = []
    for i, x in enumerate(real):
        r = sorted(np.linalg.norm(x - q) for j, q in enumerate(real) if j != i)[k - 1]
        counts.append(sum(np.linalg.norm(y - x) <= r for y in gen))
    counts = np.array(counts)
    return counts.sum() / (k * len(gen)), (counts > 0).mean()


def test_density_coverage_equal_naive_loop_and_resist_an_outlier():
    rng = np.random.default_rng(1)
    real, gen = rng.normal(size=(40, 3)), rng.normal(0.7, 0.6, size=(35, 3))
    for k in (1, 5):
        np.testing.assert_allclose(density_coverage(real, gen, identity, k=k),
                                   naive_density_coverage(real, gen, k), rtol=1e-12)
    assert density_coverage(real, gen + 100.0, identity) == (0.0, 0.0)
    assert density_coverage(real, real, identity)[1] == 1.0
    # a real outlier next to a cluster of bad samples: precision counts the whole cluster as
    # real, density only what lies in the outlier's own ball
    bad = rng.normal(size=(40, 3)) * 0.05 + 6.0
    with_outlier = np.r_[real, [[7.0, 7.0, 7.0]]]
    assert precision_recall(with_outlier, bad, identity)[0] == 1.0
    density, coverage = density_coverage(with_outlier, bad, identity)
    assert density == 40 / (5 * 40) and coverage == 1 / 41


# -- the shipped classifier's metrics on digits ---------------------------------------------------
def test_noise_is_far_above_the_real_floor_and_real_data_is_near_it(digits):
    X_train, _, X_test, y_test = digits
    rng = np.random.default_rng(0)
    noise = sample_metrics(X_test, rng.random((400, 8, 8)), seed=0)
    real = sample_metrics(X_test, X_train, seed=0)
    assert noise["fcd"] > 10 * noise["fcd_floor"]  # measured 15x (179 vs 179 samples)
    assert noise["kid"] > noise["kid_floor"] + 5 * noise["kid_se"]  # measured 10.5 se
    # noise covers no real digit (recall measured 0.07-0.08 over seeds 0-2); its precision is
    # only well below the floor (0.42-0.47; 0.28-0.66 for single halvings): one real outlier's
    # wide k-NN ball can hold the noise cluster, the known weakness of k-NN precision
    # (Naeem et al. 2020)
    assert noise["recall"] < 0.15 and noise["precision"] < noise["precision_floor"] - 0.2
    # training digits are other writers' digits of the same kind: near the floor
    assert real["fcd"] < 2 * real["fcd_floor"]  # measured 17.0 vs 20.1
    assert abs(real["kid"] - real["kid_floor"]) < 3 * np.hypot(real["kid_se"], real["kid_se_floor"])
    assert real["precision"] > 0.85 and real["recall"] > 0.85
    # the floor is the same for both (same halves of the real data)
    assert noise["fcd_floor"] == real["fcd_floor"] and noise["n_real"] == len(X_test) // 2
    table = metrics_table({"noise": noise, "train digits": real})
    assert table["noise FCD"] == f"{noise['fcd']:.4g} (floor {noise['fcd_floor']:.4g})"
    assert len(table) == 2 * 7
    # density and coverage (measured 0.26-0.34 and 0.18-0.19 for noise over seeds 0-2; floor
    # about 1.0 and 0.96-0.98; training digits 1.01-1.05 and 0.97)
    assert noise["density"] < 0.4 * noise["density_floor"] and noise["coverage"] < 0.25
    assert real["density"] > 0.9 and real["coverage"] > 0.9


def test_class_histogram_and_conditional_accuracy_on_real_digits(digits):
    _, _, X_test, y_test = digits
    hist = class_histogram(X_test.reshape(-1, 64))  # rows work as well as images
    np.testing.assert_array_equal(hist, class_histogram(torch.as_tensor(X_test)[:, None]))
    np.testing.assert_allclose(hist.sum(), 1.0)
    np.testing.assert_allclose(hist, np.bincount(y_test) / len(y_test), atol=0.02)
    acc = conditional_accuracy(X_test, y_test)
    assert acc > 0.97
    r = sample_metrics(X_test, X_test[::-1], labels=y_test[::-1])
    assert r["conditional_accuracy"] == acc and r["class_histogram"].shape == (10,)
    # a user classifier: scores (N, K) from any callable
    onehot = np.eye(3)[np.arange(len(X_test)) % 3]
    np.testing.assert_allclose(class_histogram(X_test, classifier=lambda x: onehot),
                               np.bincount(np.arange(len(X_test)) % 3) / len(X_test))


@pytest.mark.parametrize("bad, match", [
    (np.zeros((5, 7, 7)), "must be 8x8 digits"),
    (np.full((5, 64), np.nan), "NaN"),
    (np.full((5, 8, 8), 16.0),
     r"generated must have pixel values in \[0, 1\], got \[16, 16\]\. Divide"),
    (np.zeros((0, 64)), "empty"),
    (np.full((5, 64), "a"), "must be an array of pixel values"),
])
def test_bad_digits_get_clear_errors(bad, match, digits):
    with pytest.raises(ValueError, match=match):
        frechet_classifier_distance(digits[2], bad)


def test_bad_features_and_sizes_get_clear_errors():
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match="must return a 2-D array"):
        frechet_classifier_distance(x, x, features=lambda a: a[:5])
    with pytest.raises(ValueError, match="NaN"):
        kernel_classifier_distance(x, x, features=lambda a: np.full(a.shape, np.nan))
    with pytest.raises(ValueError, match="different dimensions"):
        precision_recall(x, x[:, :2], identity)
    with pytest.raises(ValueError, match="at least 2 generated samples"):
        frechet_classifier_distance(x, x[:1], identity)
    with pytest.raises(ValueError, match="at least 6 generated samples"):
        density_coverage(x, x[:5], identity)
    with pytest.raises(ValueError, match="at least 4 real samples"):
        precision_recall(x[:3], x, identity, k=3)
    with pytest.raises(ValueError, match="draw at least 10 samples, got 4"):
        sample_metrics(np.r_[x, x + 1], x[:4], features=identity)
    with pytest.raises(ValueError, match="needs at least 12 real samples"):
        sample_metrics(x, x, features=identity)
    with pytest.raises(ValueError, match="labels must be 1-D"):
        conditional_accuracy(np.zeros((4, 64)), [1, 2])
