"""`bayesdl fit hmm` and `bayesdl predict` on a sequence CSV with an id column."""

import csv

import numpy as np
import pytest

from bayesdl.cli import main
from bayesdl.io import load


def _write_sequences(path, n_seq=4, T=30):
    rng = np.random.RandomState(0)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "a", "b"])
        for i in range(n_seq):
            z = 0
            for _ in range(T):
                z = z if rng.rand() < 0.9 else 1 - z
                w.writerow([i + 10, rng.randn() + 4 * z, rng.randn()])


def test_fit_hmm_then_predict_writes_viterbi_states_and_posteriors(tmp_path):
    data, model_path, out = tmp_path / "seq.csv", tmp_path / "m.safetensors", tmp_path / "p.csv"
    _write_sequences(data)
    assert main(["fit", "hmm", "--data", str(data), "--states", "2", "--lengths-column", "id",
                 "--out", str(model_path)]) == 0
    model = load(model_path)
    assert model.n_features_in_ == 2  # the id column is not a feature
    assert main(["predict", "--model", str(model_path), "--data", str(data),
                 "--lengths-column", "id", "--out", str(out)]) == 0
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "state", "p_0", "p_1"] and len(rows) == 120
    X = np.loadtxt(data, delimiter=",", skiprows=1)[:, 1:]
    states = model.decode(X, [30] * 4)[1]
    np.testing.assert_array_equal([int(r["state"]) for r in rows], states)
    np.testing.assert_allclose([float(r["p_1"]) for r in rows],
                               model.predict_proba(X, [30] * 4)[:, 1], rtol=1e-12)


def test_split_sequence_ids_are_rejected(tmp_path, capsys):
    data = tmp_path / "seq.csv"
    data.write_text("id,a\n1,0.5\n2,0.1\n1,0.3\n")
    assert main(["fit", "hmm", "--data", str(data), "--lengths-column", "id",
                 "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "two separate runs" in capsys.readouterr().err


def test_fit_lds_learns_from_sequences(tmp_path):
    data, model_path = tmp_path / "seq.csv", tmp_path / "lds.safetensors"
    _write_sequences(data)
    assert main(["fit", "lds", "--data", str(data), "--state-dim", "1", "--lengths-column", "id",
                 "--n-iter", "4", "--out", str(model_path)]) == 0
    model = load(model_path)
    X = np.loadtxt(data, delimiter=",", skiprows=1)[:, 1:]
    assert model.transition_matrices_.shape == (1, 1) and model.n_features_in_ == 2
    # EM's last recorded bound is the likelihood before its final M-step: the fit is no worse
    assert model.score(X, [30] * 4) >= model.lower_bounds_[-1] - 1e-9


def test_hmm_cli_keeps_empty_cells_as_missing_observations(tmp_path):
    """A GaussianHMM marginalises NaN, so the CLI must not refuse empty cells (other models do)."""
    data, model_path, out = tmp_path / "seq.csv", tmp_path / "m.safetensors", tmp_path / "p.csv"
    _write_sequences(data)
    lines = data.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 1)[0] + ","  # empty cell in column b, row 4
    data.write_text("\n".join(lines) + "\n")
    assert main(["fit", "hmm", "--data", str(data), "--states", "2", "--lengths-column", "id",
                 "--out", str(model_path)]) == 0
    assert main(["predict", "--model", str(model_path), "--data", str(data),
                 "--lengths-column", "id", "--out", str(out)]) == 0
    with open(out) as f:
        rows = list(csv.DictReader(f))
    model = load(model_path)
    X = np.genfromtxt(data, delimiter=",", skip_header=1)[:, 1:]
    assert np.isnan(X[4, 1])
    np.testing.assert_allclose([float(r["p_1"]) for r in rows],
                               model.predict_proba(X, [30] * 4)[:, 1], rtol=1e-12)
