"""PCA against scikit-learn's PCA (the oracle) for every solver, and streamed fits."""

import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

from bayesdl.core.em import Batches
from bayesdl.decomposition import PCA

from ._data import low_rank


@pytest.fixture(scope="module")
def X():
    return low_rank(n=400, d=10, q=4)[0]


def _assert_same_components(ours, ref, atol=1e-10):
    # Up to the sign of each component.
    signs = np.sign((ours * ref).sum(1))[:, None]
    np.testing.assert_allclose(ours * signs, ref, rtol=0, atol=atol)


@pytest.mark.parametrize("solver", ["full", "covariance_eigh", "randomized"])
@pytest.mark.parametrize("whiten", [False, True])
def test_matches_sklearn(X, solver, whiten):
    ours = PCA(4, svd_solver=solver, whiten=whiten, random_state=0).fit(X)
    ref = SkPCA(4, svd_solver="full", whiten=whiten).fit(X)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_,
                               rtol=1e-10)
    np.testing.assert_allclose(ours.singular_values_, ref.singular_values_, rtol=1e-10)
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-10)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-12)
    _assert_same_components(ours.components_, ref.components_, atol=1e-8)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-10)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-10)
    np.testing.assert_allclose(ours.get_covariance(), ref.get_covariance(), atol=1e-9)
    Z = ours.transform(X)
    np.testing.assert_allclose(np.abs(Z), np.abs(ref.transform(X)), atol=1e-8)
    np.testing.assert_allclose(ours.inverse_transform(Z), ref.inverse_transform(ref.transform(X)),
                               atol=1e-8)


def test_components_are_sklearns_with_its_sign_convention(X):
    ours, ref = PCA(3).fit(X), SkPCA(3, svd_solver="full").fit(X)
    np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-10)
    assert list(ours.get_feature_names_out()) == list(ref.get_feature_names_out())


@pytest.mark.parametrize("n_components", [None, 0.9, 0.999, "mle", 0])
def test_n_components_rules_match_sklearn(X, n_components):
    ours = PCA(n_components, svd_solver="full").fit(X)
    ref = SkPCA(n_components, svd_solver="full").fit(X)
    assert ours.n_components_ == ref.n_components_
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-10)
    if ours.n_components_ > 0:
        np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-10)


def test_wide_data_randomized_and_full(X):
    rng = np.random.default_rng(0)  # five strong directions over weak noise
    Xw = rng.normal(size=(30, 5)) @ (rng.normal(size=(5, 600)) * np.arange(5, 0, -1)[:, None]) \
        + 0.01 * rng.normal(size=(30, 600))
    ref = SkPCA(5, svd_solver="full").fit(Xw)
    for solver in ("auto", "full", "randomized"):
        ours = PCA(5, svd_solver=solver, random_state=0).fit(Xw)
        np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-6)
        _assert_same_components(ours.components_, ref.components_, atol=1e-5)


def test_streamed_npy_and_batches_equal_in_memory(X, tmp_path):
    ref = PCA(4, svd_solver="covariance_eigh").fit(X)
    path = tmp_path / "x.npy"
    np.save(path, X)
    for data, kw in ((str(path), {"chunk_size": 7}), (Batches([X[:123], X[123:]]), {}),
                     (X, {"chunk_size": 13})):
        ours = PCA(4, **kw).fit(data)
        assert ours._fit_svd_solver == "covariance_eigh"
        np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-10)
        np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-10)
        np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-12)
        np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-10)


def test_float32(X):
    ours = PCA(3, dtype="float32").fit(X)
    assert ours.components_.dtype == np.float32 and ours.transform(X).dtype == np.float32
    ref = SkPCA(3).fit(X)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-4)


def test_bad_inputs_have_clear_errors(X, tmp_path):
    with pytest.raises(ValueError, match="n_components=11 must be between 0 and"):
        PCA(11).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        PCA(2).fit(np.where(np.eye(*X.shape) > 0, np.nan, X))
    path = tmp_path / "x.npy"
    np.save(path, X)
    with pytest.raises(ValueError, match="needs the data in memory"):
        PCA(2, svd_solver="full").fit(str(path))
    with pytest.raises(ValueError, match="n_samples >= n_features"):
        PCA("mle").fit(X[:5])
