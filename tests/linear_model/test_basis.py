"""Basis transformers against closed forms, naive loops and scikit-learn."""

import numpy as np
import pytest
from sklearn.linear_model import BayesianRidge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures

from bayesdl.linear_model import BayesianLinearRegression, GaussianBasis, PolynomialBasis, SigmoidBasis


def test_polynomial_basis_1d_is_powers_of_x():
    x = np.linspace(-1, 2, 7)[:, None]
    np.testing.assert_allclose(PolynomialBasis(degree=4, include_bias=True).fit_transform(x),
                               np.vander(x[:, 0], 5, increasing=True))


@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("include_bias", [True, False])
def test_polynomial_basis_matches_sklearn_polynomial_features(degree, include_bias):
    X = np.random.default_rng(0).normal(size=(20, 3))
    ours = PolynomialBasis(degree=degree, include_bias=include_bias).fit(X)
    sk = PolynomialFeatures(degree=degree, include_bias=include_bias).fit(X)
    np.testing.assert_allclose(ours.transform(X), sk.transform(X), rtol=1e-12)
    np.testing.assert_array_equal(ours.powers_, sk.powers_)


def test_polynomial_degree_zero_without_bias_is_an_error():
    with pytest.raises(ValueError, match="include_bias=True"):
        PolynomialBasis(degree=0).fit(np.ones((3, 1)))


def test_gaussian_and_sigmoid_bases_against_naive_loops():
    X = np.random.default_rng(1).uniform(-2, 3, size=(11, 2))
    for cls, h in [(GaussianBasis, lambda u: np.exp(-u * u / 2)),
                   (SigmoidBasis, lambda u: 1 / (1 + np.exp(-u)))]:
        basis = cls(n_centers=5).fit(X)
        out = basis.transform(X)
        expected = np.empty((11, 10))
        for n in range(11):
            for d in range(2):
                lo, hi = X[:, d].min(), X[:, d].max()
                s = (hi - lo) / 4  # spacing of 5 evenly spaced centres
                for j in range(5):
                    mu = lo + j * s
                    expected[n, d * 5 + j] = h((X[n, d] - mu) / s)  # PRML 3.4 / 3.5
        np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_fixed_width_and_constant_feature():
    X = np.c_[np.linspace(0, 1, 6), np.full(6, 2.0)]
    basis = GaussianBasis(n_centers=3, width=0.5).fit(X)
    np.testing.assert_allclose(basis.width_, [0.5, 0.5])
    assert np.all(np.isfinite(GaussianBasis(n_centers=3).fit_transform(X)))


def test_basis_in_a_pipeline_equals_sklearn_bayesian_ridge_on_the_same_features():
    x = np.random.default_rng(2).uniform(0, 1, 50)[:, None]
    t = np.sin(2 * np.pi * x[:, 0]) + 0.1 * np.random.default_rng(3).normal(size=50)
    ours = make_pipeline(GaussianBasis(n_centers=9), BayesianLinearRegression(tol=1e-12, max_iter=3000))
    ref = make_pipeline(GaussianBasis(n_centers=9), BayesianRidge(tol=1e-12, max_iter=3000))
    np.testing.assert_allclose(ours.fit(x, t).predict(x), ref.fit(x, t).predict(x), rtol=1e-10)
    assert np.sqrt(np.mean((ours.predict(x) - np.sin(2 * np.pi * x[:, 0])) ** 2)) < 0.1


@pytest.mark.parametrize("include_bias", [True, False])
def test_polynomial_feature_names_are_sklearns(include_bias):
    X = np.random.default_rng(0).normal(size=(10, 3))
    ours = PolynomialBasis(degree=3, include_bias=include_bias).fit(X)
    sk = PolynomialFeatures(degree=3, include_bias=include_bias).fit(X)
    np.testing.assert_array_equal(ours.get_feature_names_out(), sk.get_feature_names_out())
    names = ["a", "b", "c"]
    np.testing.assert_array_equal(ours.get_feature_names_out(names),
                                  sk.get_feature_names_out(names))
    with pytest.raises(ValueError, match="input_features should have length"):
        ours.get_feature_names_out(["a", "b"])


def test_all_transformers_name_their_outputs_as_sklearn_does():
    from sklearn.decomposition import PCA

    from bayesdl.cluster import KMeans

    X = np.random.default_rng(1).normal(size=(30, 2))
    for est, prefix, n_out in [(GaussianBasis(n_centers=4), "gaussianbasis", 8),
                               (SigmoidBasis(n_centers=3), "sigmoidbasis", 6),
                               (KMeans(3, random_state=0), "kmeans", 3)]:
        names = est.fit(X).get_feature_names_out()
        np.testing.assert_array_equal(names, [f"{prefix}{i}" for i in range(n_out)])
        assert est.transform(X).shape == (30, n_out)
    # the convention itself, from a scikit-learn transformer that makes new features
    assert list(PCA(2).fit(X).get_feature_names_out()) == ["pca0", "pca1"]


def test_feature_names_survive_save_and_load(tmp_path):
    import bayesdl

    X = np.random.default_rng(2).normal(size=(12, 2))
    basis = GaussianBasis(n_centers=3).fit(X)
    basis.save(tmp_path / "b.safetensors")
    np.testing.assert_array_equal(bayesdl.load(tmp_path / "b.safetensors").get_feature_names_out(),
                                  basis.get_feature_names_out())


def test_pipeline_with_pandas_output_names_every_column():
    pd = pytest.importorskip("pandas")
    from sklearn.pipeline import make_union

    X = pd.DataFrame(np.random.default_rng(3).uniform(size=(25, 2)), columns=["age", "dose"])
    names = ["age", "dose", "age^2", "age dose", "dose^2"]
    poly = make_pipeline(PolynomialBasis(degree=2)).set_output(transform="pandas")
    out = poly.fit_transform(X)
    assert list(out.columns) == names
    np.testing.assert_allclose(out["age dose"], X["age"] * X["dose"], rtol=1e-14)
    union = make_union(GaussianBasis(n_centers=2), SigmoidBasis(n_centers=2))
    out = union.set_output(transform="pandas").fit_transform(X)
    assert list(out.columns) == [f"gaussianbasis__gaussianbasis{i}" for i in range(4)] + [
        f"sigmoidbasis__sigmoidbasis{i}" for i in range(4)]
    # A bayesdl regressor fitted after a pandas-output basis sees the basis' column names.
    model = make_pipeline(PolynomialBasis(degree=2), BayesianLinearRegression()).set_output(
        transform="pandas").fit(X, X["age"] + X["dose"] ** 2)
    np.testing.assert_array_equal(model[-1].feature_names_in_, names)
