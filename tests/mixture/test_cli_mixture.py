"""The mixture CLI targets (fit gmm / vbgmm), predict on them, and bayesdl sample."""

import csv
import warnings

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import bayesdl
from bayesdl.cli import main
from bayesdl.datasets import make_gaussian_blobs


def _read(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=float)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    X, _ = make_gaussian_blobs(300, random_state=0)
    path = tmp_path_factory.mktemp("cli") / "x.npy"
    np.save(path, X)
    return X, path


def test_fit_gmm_selects_components_by_bic_like_sklearn(data, tmp_path, capsys):
    X, path = data
    out = tmp_path / "gmm.safetensors"
    assert main(["fit", "gmm", "--data", str(path), "--components", "1..5", "--select", "bic",
                 "--out", str(out)]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bics = [SkGaussianMixture(k, random_state=0).fit(X).bic(X) for k in range(1, 6)]
    model = bayesdl.load(out)
    assert model.n_components == 1 + int(np.argmin(bics)) == 3
    printed = capsys.readouterr().out
    assert "bic[3]" in printed and "n_components: 3" in printed
    np.testing.assert_allclose(model.bic(X), bics[2], rtol=1e-6)

    assert main(["predict", "--model", str(out), "--data", str(path),
                 "--out", str(tmp_path / "p.csv")]) == 0
    header, values = _read(tmp_path / "p.csv")
    assert header == ["label", "p_0", "p_1", "p_2"]
    np.testing.assert_allclose(values[:, 1:], model.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(values[:, 0], model.predict(X))

    assert main(["predict", "--model", str(out), "--data", str(path), "--score",
                 "--out", str(tmp_path / "s.csv")]) == 0
    header, values = _read(tmp_path / "s.csv")
    assert header == ["log_density"]
    np.testing.assert_allclose(values[:, 0], model.score_samples(X), rtol=1e-10)

    assert main(["sample", "--model", str(out), "-n", "4000", "--seed", "1",
                 "--out", str(tmp_path / "draws.csv")]) == 0
    header, values = _read(tmp_path / "draws.csv")
    assert header == ["x0", "x1", "component"] and values.shape == (4000, 3)
    mix = model.to_distribution()
    se = np.sqrt(mix.variance.numpy() / 4000)
    assert np.all(np.abs(values[:, :2].mean(0) - mix.mean.numpy()) < 5 * se)


def test_fit_vbgmm_prunes_components(data, tmp_path, capsys):
    _, path = data
    out = tmp_path / "vb.safetensors"
    assert main(["fit", "vbgmm", "--data", str(path), "--components", "8", "--alpha0", "1e-3",
                 "--prior", "dirichlet_distribution", "--max-iter", "500",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "n_active_components: 3" in printed
    model = bayesdl.load(out)
    assert model.n_active_components_ == 3
    # the printed "elbo" is the true ELBO, not scikit-learn's bound up to a constant
    elbo = float(printed.split("elbo:")[1].split()[0])
    np.testing.assert_allclose(elbo, model.elbo_, rtol=1e-5)
    assert abs(model.elbo_ - model.lower_bound_) > 10


def test_cli_errors_are_one_clear_line(data, tmp_path, capsys):
    _, path = data
    assert main(["fit", "gmm", "--data", str(path), "--components", "a..b",
                 "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "use a number (3), a range (1..10)" in capsys.readouterr().err
    main(["fit", "gmm", "--data", str(path), "--out", str(tmp_path / "m.safetensors")])
    assert main(["sample", "--model", str(tmp_path / "m.safetensors"), "-n", "0",
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert "-n must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("n_features", [1, 2])
def test_predict_score_of_a_vbgmm_is_a_density_that_integrates_to_one(tmp_path, n_features):
    # The log_density column is the Student-t mixture predictive (PRML 10.81), normalised;
    # scikit-learn's score_samples (the plug-in E-step score) is not.
    means = ((0.0,), (4.0,), (9.0,)) if n_features == 1 else ((0, 0), (4, 4), (0, 6))
    X, _ = make_gaussian_blobs(150, means=means, random_state=0)
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "vb.safetensors"
    assert main(["fit", "vbgmm", "--data", str(tmp_path / "x.npy"), "--components", "6",
                 "--prior", "dirichlet_distribution", "--out", str(out)]) == 0
    if n_features == 1:
        axes = [np.linspace(-60.0, 70.0, 6501)]
    else:
        axes = [np.linspace(-14.0, 18.0, 321)] * 2
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, n_features)
    np.save(tmp_path / "grid.npy", grid)
    assert main(["predict", "--model", str(out), "--data", str(tmp_path / "grid.npy"),
                 "--score", "--out", str(tmp_path / "s.csv")]) == 0
    header, values = _read(tmp_path / "s.csv")
    assert header == ["log_density"]

    def integral(log_density):
        density = np.exp(log_density).reshape([len(a) for a in axes])
        for a in axes[::-1]:
            density = np.trapezoid(density, a, axis=-1)
        return density

    np.testing.assert_allclose(integral(values[:, 0]), 1.0, atol=2e-3)
    model = bayesdl.load(out)
    np.testing.assert_allclose(values[:, 0], model.to_distribution().log_prob(
        torch.as_tensor(grid)).numpy(), rtol=1e-12)
    assert integral(model.score_samples(grid)) < 0.99
