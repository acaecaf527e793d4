"""The decomposition CLI targets (fit pca / ppca / fa) and predict's transform and impute."""

import csv

import numpy as np
import pytest

import bayesdl
from bayesdl.cli import main

from ._data import low_rank, with_missing


def _read(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=float)


def _write_csv(path, X):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"f{j}" for j in range(X.shape[1])])
        writer.writerows([["" if np.isnan(v) else repr(float(v)) for v in row] for row in X])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    X, _ = low_rank(n=200, d=5, q=2)
    Xm, _ = with_missing(X, 0.2)
    folder = tmp_path_factory.mktemp("cli")
    _write_csv(folder / "x.csv", X)
    _write_csv(folder / "xm.csv", Xm)
    return X, Xm, folder


def test_fit_ppca_and_predict_transform_and_impute(data, tmp_path, capsys):
    X, Xm, folder = data
    out = tmp_path / "ppca.safetensors"
    assert main(["fit", "ppca", "--data", str(folder / "xm.csv"), "--components", "2",
                 "--tol", "1e-4", "--out", str(out)]) == 0
    assert "noise_variance" in capsys.readouterr().out
    model = bayesdl.load(out)
    assert model.n_components_ == 2 and model.n_iter_ > 1  # EM: the data have gaps
    assert main(["predict", "--model", str(out), "--data", str(folder / "xm.csv"),
                 "--out", str(tmp_path / "z.csv")]) == 0
    header, Z = _read(tmp_path / "z.csv")
    assert header == ["probabilisticpca0", "probabilisticpca1"]
    np.testing.assert_allclose(Z, model.transform(Xm), rtol=1e-12)
    assert main(["predict", "--model", str(out), "--data", str(folder / "xm.csv"), "--impute",
                 "--out", str(tmp_path / "filled.csv")]) == 0
    header, filled = _read(tmp_path / "filled.csv")
    assert header == [f"f{j}" for j in range(5)]
    np.testing.assert_allclose(filled, model.impute(Xm), rtol=1e-12)
    assert not np.isnan(filled).any()


@pytest.mark.parametrize("target, cls", [("pca", "PCA"), ("fa", "FactorAnalysis")])
def test_fit_pca_and_fa(data, tmp_path, target, cls):
    X, _, folder = data
    out = tmp_path / "m.safetensors"
    assert main(["fit", target, "--data", str(folder / "x.csv"), "--components", "2",
                 "--out", str(out)] + (["--max-iter", "30"] if target == "fa" else [])) == 0
    model = bayesdl.load(out)
    assert type(model).__name__ == cls and model.components_.shape == (2, 5)
    assert main(["predict", "--model", str(out), "--data", str(folder / "x.csv"),
                 "--out", str(tmp_path / "z.csv")]) == 0
    np.testing.assert_allclose(_read(tmp_path / "z.csv")[1], model.transform(X), rtol=1e-10)


def test_clear_errors(data, tmp_path, capsys):
    _, _, folder = data
    out = tmp_path / "pca.safetensors"
    assert main(["fit", "pca", "--data", str(folder / "x.csv"), "--out", str(out)]) == 0
    assert main(["predict", "--model", str(out), "--data", str(folder / "x.csv"), "--impute",
                 "--out", str(tmp_path / "f.csv")]) == 2
    assert "--impute needs a model with missing-data support" in capsys.readouterr().err
    assert main(["fit", "ppca", "--data", str(folder / "x.csv"), "--components", "9",
                 "--out", str(out)]) == 2
    assert "n_components=9 is larger than n_features = 5" in capsys.readouterr().err
