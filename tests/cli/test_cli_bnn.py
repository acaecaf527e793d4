"""``bayesdl fit bnn`` / ``bayesdl evaluate`` / ``bayesdl predict`` end to end, in-process."""

import csv

import numpy as np
import pytest
from scipy import stats

from bayesdl import load
from bayesdl.cli import main
from bayesdl.uncertainty import (accuracy, expected_calibration_error, interval_coverage,
                                 negative_log_likelihood, rmse)
from tests._threads import one_torch_thread  # noqa: F401 (autouse fixture)


def _write(path, columns):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(columns))
        w.writerows(zip(*columns.values()))
    return path


def _printed(out):
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_regression_fit_evaluate_predict(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 200)
    y = x ** 2 + 0.3 * rng.standard_normal(200)
    train = _write(tmp_path / "train.csv", {"x": x[:150], "y": y[:150]})
    test = _write(tmp_path / "test.csv", {"x": x[150:], "y": y[150:]})
    model = tmp_path / "m.safetensors"
    assert main(["fit", "bnn", "--data", str(train), "--target", "y", "--out", str(model),
                 "--method", "mc_dropout", "--hidden", "32,32", "--epochs", "60",
                 "--n-samples", "20", "--quiet"]) == 0
    assert "task: regression" in capsys.readouterr().out
    fig = tmp_path / "cal.png"
    assert main(["evaluate", "--model", str(model), "--data", str(test), "--target", "y",
                 "--figure", str(fig)]) == 0
    printed = _printed(capsys.readouterr().out)
    reg = load(model)
    dist = reg.predict_dist(x[150:, None])
    assert float(printed["NLL"]) == pytest.approx(negative_log_likelihood(dist, y[150:]), rel=1e-5)
    assert float(printed["RMSE"]) == pytest.approx(rmse(dist, y[150:]), rel=1e-5)
    assert float(printed["coverage of the 95% interval"]) == pytest.approx(
        interval_coverage(dist, y[150:], 0.95))
    assert fig.stat().st_size > 1000
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(model), "--data", str(test), "--out", str(out)]) == 0
    rows = np.genfromtxt(out, delimiter=",", names=True)
    np.testing.assert_allclose(rows["mean"], dist.mean.numpy(), rtol=1e-6)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(rows["upper"], dist.mean.numpy() + z * dist.stddev.numpy(),
                               rtol=1e-6)


def test_classification_fit_evaluate(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((160, 2))
    label = (X[:, 0] + X[:, 1] > 0).astype(int) + 2 * (X[:, 0] > 1)
    train = _write(tmp_path / "train.csv", {"a": X[:120, 0], "b": X[:120, 1], "c": label[:120]})
    test = _write(tmp_path / "test.csv", {"a": X[120:, 0], "b": X[120:, 1], "c": label[120:]})
    model = tmp_path / "c.safetensors"
    assert main(["fit", "bnn", "--data", str(train), "--target", "c", "--out", str(model),
                 "--method", "bbb", "--epochs", "30", "--n-samples", "10", "--quiet"]) == 0
    assert "task: classification" in capsys.readouterr().out
    assert main(["evaluate", "--model", str(model), "--data", str(test), "--target", "c",
                 "--figure", str(tmp_path / "rel.png")]) == 0
    printed = _printed(capsys.readouterr().out)
    clf = load(model)
    dist = clf.predict_dist(X[120:])
    codes = np.searchsorted(clf.classes_, label[120:])
    assert float(printed["accuracy"]) == pytest.approx(accuracy(dist, codes), rel=1e-5)
    assert float(printed["ECE"]) == pytest.approx(expected_calibration_error(dist, codes), rel=1e-5)
    assert (tmp_path / "rel.png").stat().st_size > 1000
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(model), "--data", str(test), "--out", str(out)]) == 0
    rows = np.genfromtxt(out, delimiter=",", names=True)
    np.testing.assert_allclose(rows["label"], clf.classes_[dist.probs.argmax(1).numpy()])

    # a class the model never saw, and a NaN target, are clear one-line errors
    bad = _write(tmp_path / "bad.csv", {"a": [0.0, 1.0], "b": [0.0, 1.0], "c": [0, 9]})
    assert main(["evaluate", "--model", str(model), "--data", str(bad), "--target", "c"]) == 2
    assert "[9.0] were not seen at fit" in capsys.readouterr().err
    nan = _write(tmp_path / "nan.csv", {"a": [0.0, 1.0, 2.0], "b": [0.0, 1.0, 2.0],
                                        "c": [0, "", 1]})
    assert main(["fit", "bnn", "--data", str(nan), "--target", "c", "--out",
                 str(tmp_path / "x.safetensors"), "--quiet"]) == 2
    assert "NaN" in capsys.readouterr().err
