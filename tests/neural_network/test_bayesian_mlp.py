"""Bayesian MLP estimators: persistence, uncertainty behaviour, calibration, bad input."""

import numpy as np
import pytest

import bayesdl
from bayesdl.neural_network import BayesianMLPClassifier, BayesianMLPRegressor
from bayesdl.uncertainty import decompose, encode_labels


def _hetero_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, size=n)
    y = np.sin(x) + (0.05 + 0.3 * np.abs(x)) * rng.standard_normal(n)
    return x[:, None], y


@pytest.mark.parametrize("method", ["bbb", "mc_dropout", "ensemble"])
def test_save_load_round_trip_gives_identical_predictions(tmp_path, method):
    X, y = _hetero_data(120)
    reg = BayesianMLPRegressor((16,), method=method, heteroscedastic=method == "bbb",
                               max_epochs=5, n_estimators=2, n_samples=6, random_state=0)
    reg.fit(X, y)
    path = bayesdl.save(reg, tmp_path / "m.safetensors")
    back = bayesdl.load(path)
    mean, std = reg.predict(X, return_std=True)
    mean2, std2 = back.predict(X, return_std=True)
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(std, std2)
    Xc, yc = X, np.where(y > 0, "pos", "neg")
    clf = BayesianMLPClassifier((8,), method=method, max_epochs=3, n_estimators=2, n_samples=4,
                                random_state=0).fit(Xc, yc)
    back = bayesdl.load(bayesdl.save(clf, tmp_path / "c.safetensors"))
    np.testing.assert_array_equal(clf.predict_proba(Xc), back.predict_proba(Xc))
    assert list(back.classes_) == ["neg", "pos"]


def test_heteroscedastic_regression_learns_input_dependent_noise():
    X, y = _hetero_data(400)
    reg = BayesianMLPRegressor((32, 32), method="mc_dropout", heteroscedastic=True,
                               max_epochs=150, random_state=0).fit(X, y)
    grid = np.array([[0.0], [2.5]])
    d = decompose(reg.predict_dist(grid))
    aleatoric_sd = np.sqrt(d.aleatoric.numpy())
    # true noise sd: 0.05 at x = 0 and 0.8 at x = 2.5
    assert aleatoric_sd[1] > 3 * aleatoric_sd[0]
    assert aleatoric_sd[1] == pytest.approx(0.8, rel=0.35)
    # the predictive std of predict() is sqrt(aleatoric + epistemic)
    _, std = reg.predict(grid, return_std=True)
    np.testing.assert_allclose(std ** 2, (d.aleatoric + d.epistemic).numpy(), rtol=1e-10)


def test_bad_input_errors():
    X, y = _hetero_data(30)
    y_nan = y.copy()
    y_nan[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BayesianMLPRegressor(max_epochs=1).fit(X, y_nan)
    clf = BayesianMLPClassifier((4,), max_epochs=1, random_state=0).fit(X, (y > 0).astype(int))
    with pytest.raises(ValueError, match=r"label\(s\) \[7\] were not seen at fit"):
        encode_labels([0, 1, 7], clf.classes_)
    reg = BayesianMLPRegressor((4,), max_epochs=1, random_state=0).fit(X, y)
    reg.n_samples = 0  # set after fit, bypassing fit-time validation
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        reg.predict(X)
    with pytest.raises(ValueError, match="prior_sigma"):
        BayesianMLPRegressor(prior_sigma=0.0).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        BayesianMLPClassifier(max_epochs=1).fit(X, np.zeros(30))


@pytest.mark.parametrize("labels", [np.array([0, 1]), np.array([3, -1], dtype=np.int32),
                                    np.array(["dog", "cat"]),
                                    np.array(["no", "yes"], dtype=object),
                                    np.array([True, False])])
def test_classes_keep_the_labels_and_dtype_as_given(labels):
    # scikit-learn's rule: classes_ = np.unique(y), predict returns those labels
    X, y = _hetero_data(40)
    y_labels = labels[(y > 0).astype(int)]
    clf = BayesianMLPClassifier((4,), max_epochs=2, n_samples=3, random_state=0)
    with pytest.warns(Warning):  # a two-epoch budget does not converge
        clf.fit(X, y_labels)
    np.testing.assert_array_equal(clf.classes_, np.unique(y_labels))
    assert clf.classes_.dtype == np.unique(y_labels).dtype
    pred = clf.predict(X)
    assert pred.dtype == y_labels.dtype and set(pred) <= set(labels)


def test_global_input_scaling_uses_one_mean_and_scale_and_keeps_rare_pixels_small(tmp_path):
    """input_scaling='global' standardises pixels as images are: one mean and one sd over all
    entries (numpy's), so ink in a pixel blank in every training image stays O(1), where the
    per-pixel scaling divides it by that pixel's tiny spread."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 16, size=(60, 4))
    X[:, 0] = 0.0
    X[0, 0] = 0.1  # a nearly always-blank pixel
    y = (X[:, 1] > 8).astype(int)
    kw = dict(max_epochs=1, n_samples=2, random_state=0)
    clf = BayesianMLPClassifier((4,), input_scaling="global", **kw).fit(X, y)
    np.testing.assert_allclose(clf.x_mean_, np.full(4, X.mean()))
    np.testing.assert_allclose(clf.x_scale_, np.full(4, X.std()))
    ink = np.array([[16.0, 8.0, 8.0, 8.0]])
    assert np.abs(clf._standardise(ink).numpy()).max() < 3
    per_pixel = BayesianMLPClassifier((4,), **kw).fit(X, y)
    assert np.abs(per_pixel._standardise(ink).numpy()).max() > 100
    back = bayesdl.load(bayesdl.save(clf, tmp_path / "g.safetensors"))
    assert back.input_scaling == "global"
    np.testing.assert_array_equal(back.predict_proba(ink), clf.predict_proba(ink))
    with pytest.raises(ValueError, match="input_scaling"):
        BayesianMLPClassifier(input_scaling="pixel", **kw).fit(X, y)
