"""``bayesdl fit gpr`` then ``bayesdl predict``: the saved model's predictions are the fitted
regressor's, and the interval is mean +- z std."""

import csv

import numpy as np
from scipy.stats import norm

import bayesdl
from bayesdl.cli import main


def test_fit_gpr_and_predict(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(50, 2))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=50)
    data = tmp_path / "train.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "target"])
        w.writerows(np.column_stack([X, y]).tolist())
    model_path, out = tmp_path / "gp.safetensors", tmp_path / "pred.csv"
    assert main(["fit", "gpr", "--data", str(data), "--target", "target", "--kernel", "matern",
                 "--ard", "--restarts", "1", "--out", str(model_path)]) == 0
    assert "log marginal likelihood" in capsys.readouterr().out
    model = bayesdl.load(model_path)
    assert main(["predict", "--model", str(model_path), "--data", str(data), "--out", str(out),
                 "--interval", "0.9"]) == 0
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["mean", "std", "lower", "upper"]
    pred = np.array(rows[1:], dtype=float)
    mean, std = model.predict(X, return_std=True)
    np.testing.assert_allclose(pred[:, 0], mean, rtol=1e-12)
    np.testing.assert_allclose(pred[:, 1], std, rtol=1e-12)
    np.testing.assert_allclose(pred[:, 3], mean + norm.ppf(0.95) * std, rtol=1e-12)
    assert model.kernel_.k1.k2.nu == 2.5 and np.size(model.kernel_.k1.k2.length_scale) == 2


def test_fit_gpr_rejects_bad_options(tmp_path, capsys):
    data = tmp_path / "x.csv"
    data.write_text("a,target\n1,2\n2,3\n3,5\n")
    assert main(["fit", "gpr", "--data", str(data), "--target", "target", "--restarts", "-1",
                 "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "--restarts must be >= 0" in capsys.readouterr().err
