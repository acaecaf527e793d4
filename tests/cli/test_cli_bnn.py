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
    assert "[9] were not seen at fit" in capsys.readouterr().err
    nan = _write(tmp_path / "nan.csv", {"a": [0.0, 1.0, 2.0], "b": [0.0, 1.0, 2.0],
                                        "c": [0, "", 1]})
    assert main(["fit", "bnn", "--data", str(nan), "--target", "c", "--out",
                 str(tmp_path / "x.safetensors"), "--quiet"]) == 2
    assert "NaN" in capsys.readouterr().err


@pytest.mark.parametrize("labels", [("0", "1"), ("cat", "dog"), ("-1", "7")])
def test_classification_labels_are_written_as_the_file_gives_them(tmp_path, capsys, labels):
    # a 0/1 target used to come back as 0.0 (columns p_0.0); text labels were refused
    rng = np.random.default_rng(2)
    X = rng.standard_normal((80, 2))
    y = np.where(X[:, 0] > 0, labels[1], labels[0])
    train = _write(tmp_path / "train.csv", {"a": X[:, 0], "b": X[:, 1], "c": y})
    model = tmp_path / "c.safetensors"
    assert main(["fit", "bnn", "--data", str(train), "--target", "c", "--out", str(model),
                 "--hidden", "8", "--epochs", "5", "--n-samples", "5", "--quiet"]) == 0
    assert "task: classification" in capsys.readouterr().out
    clf = load(model)
    numeric = labels[0].lstrip("-").isdigit()
    assert clf.classes_.dtype.kind == ("i" if numeric else "O")
    assert [str(c) for c in clf.classes_] == sorted(labels, key=int if numeric else str)
    out = tmp_path / "pred.csv"
    features = _write(tmp_path / "x.csv", {"a": X[:, 0], "b": X[:, 1]})
    assert main(["predict", "--model", str(model), "--data", str(features), "--out",
                 str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["label"] + [f"p_{c}" for c in clf.classes_]
    proba = clf.predict_proba(X)
    assert [r[0] for r in rows[1:]] == [str(clf.classes_[k]) for k in proba.argmax(1)]
    assert set(r[0] for r in rows[1:]) <= set(labels)  # "0", never "0.0"
    np.testing.assert_allclose(np.array([r[1:] for r in rows[1:]], dtype=float), proba,
                               rtol=1e-12)
    assert main(["evaluate", "--model", str(model), "--data", str(train), "--target", "c",
                 "--figure", str(tmp_path / "rel.png")]) == 0
    printed = _printed(capsys.readouterr().out)
    assert float(printed["accuracy"]) == pytest.approx(np.mean(clf.predict(X) == clf.classes_[
        np.searchsorted(clf.classes_, y.astype(clf.classes_.dtype))]), rel=1e-12)


def test_text_target_with_task_regression_or_an_empty_label_is_a_clear_error(tmp_path, capsys):
    data = _write(tmp_path / "d.csv", {"a": [0.0, 1.0, 2.0], "c": ["x", "y", "x"]})
    assert main(["fit", "bnn", "--data", str(data), "--target", "c", "--task", "regression",
                 "--out", str(tmp_path / "m.safetensors"), "--quiet"]) == 2
    assert "text labels; regression needs numbers" in capsys.readouterr().err
    data = _write(tmp_path / "e.csv", {"a": [0.0, 1.0, 2.0], "c": ["x", "", "y"]})
    assert main(["fit", "bnn", "--data", str(data), "--target", "c",
                 "--out", str(tmp_path / "m.safetensors"), "--quiet"]) == 2
    assert "line 3, column 'c' is empty" in capsys.readouterr().err
