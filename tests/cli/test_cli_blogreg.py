"""``bayesdl fit blogreg`` and ``predict``: probabilities and their posterior standard deviations."""

import csv

import numpy as np
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from bayesdl.cli import main
from bayesdl.linear_model import BayesianLogisticRegression


def test_fit_blogreg_then_predict_writes_probabilities_and_stds(tmp_path, capsys):
    X, y = load_iris(return_X_y=True)
    names = ["sl", "sw", "pl", "pw"]
    data = tmp_path / "iris.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*names, "species"])
        w.writerows(np.c_[X, y])
    model = tmp_path / "m.safetensors"
    assert main(["fit", "blogreg", "--data", str(data), "--target", "species", "--out", str(model)]) == 0
    assert "log evidence" in capsys.readouterr().out
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(out)]) == 0
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["label", "p_0.0", "p_1.0", "p_2.0", "std_0.0", "std_1.0", "std_2.0"]
    values = np.array(rows[1:], dtype=float)
    ref = BayesianLogisticRegression(random_state=0).fit(StandardScaler().fit_transform(X), y)
    proba, std = ref.predict_proba(StandardScaler().fit_transform(X), return_std=True)
    np.testing.assert_allclose(values[:, 1:4], proba, rtol=1e-6)
    np.testing.assert_allclose(values[:, 4:], std, rtol=1e-6)
    np.testing.assert_array_equal(values[:, 0], proba.argmax(1))


def test_binary_string_labels_fit_save_and_predict(tmp_path):
    """Two classes named by strings: the model saves (a binary intercept_ is a one-element
    view of a row, which the checksum once refused) and predict writes the probabilities of
    the standardised-input model and their (equal) standard deviations."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X, labels = X[:, :3], np.where(y == 1, "benign", "malignant")
    data = tmp_path / "bc.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c", "diagnosis"])
        w.writerows([[*row, label] for row, label in zip(X, labels)])
    model = tmp_path / "m.safetensors"
    assert main(["fit", "blogreg", "--data", str(data), "--target", "diagnosis", "--alpha", "1",
                 "--out", str(model)]) == 0
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(out)]) == 0
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["label", "p_benign", "p_malignant", "std_benign", "std_malignant"]
    values = np.array([r[1:] for r in rows[1:]], dtype=float)
    Xs = StandardScaler().fit_transform(X)
    proba = BayesianLogisticRegression(alpha=1.0).fit(Xs, labels).predict_proba(Xs)
    np.testing.assert_allclose(values[:, :2], proba, rtol=1e-6)
    np.testing.assert_allclose(values[:, 2], values[:, 3])
    assert [r[0] for r in rows[1:]] == list(np.where(proba[:, 1] > 0.5, "malignant", "benign"))
