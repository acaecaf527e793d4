"""The command line as a new user meets it: their own CSV files, their mistakes, one-line
errors that say what to do, and output files with the usual permissions."""

import csv
import os
import pickle
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import bayesdl
from bayesdl.cli import main
from bayesdl.linear_model import BayesianLinearRegression, PolynomialBasis
from bayesdl.mixture import GaussianMixture

ROOT = Path(__file__).resolve().parents[2]


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def regression_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(60, 3))
    y = X @ [1.0, -0.5, 0.25] + 0.1 * rng.normal(size=60)
    return _write_csv(tmp_path / "train.csv", ["a", "b", "c", "y"], np.c_[X, y].tolist()), X, y


@pytest.fixture
def blob_csv(tmp_path):
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(-2, 0.5, size=(40, 2)), rng.normal(2, 0.5, size=(40, 2))]
    label = np.r_[np.zeros(40), np.ones(40)]
    return _write_csv(tmp_path / "blobs.csv", ["x1", "x2", "label"], np.c_[X, label].tolist())


# -- evaluate on a density model -------------------------------------------------------------
@pytest.mark.parametrize("model", ["gmm", "vbgmm"])
def test_evaluate_on_a_mixture_says_what_evaluate_supports(tmp_path, blob_csv, capsys, model):
    features = _write_csv(tmp_path / "x.csv", ["x1", "x2"],
                          [r[:2] for r in csv.reader(open(blob_csv))][1:])
    path = tmp_path / f"{model}.safetensors"
    assert main(["fit", model, "--data", str(features), "--components", "2", "--out", str(path)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(path), "--data", str(blob_csv), "--target", "label",
                 "--figure", str(tmp_path / "f.png")]) == 2
    err = _error_line(capsys)
    assert "classifiers and regressors" in err and "predict --score" in err
    assert not (tmp_path / "f.png").exists()


# -- fit blr with a huge polynomial basis ----------------------------------------------------
def test_huge_polynomial_basis_is_refused_before_anything_is_built(regression_csv, tmp_path,
                                                                    capsys, monkeypatch):
    def built(*args, **kwargs):
        raise AssertionError("the basis was built")

    monkeypatch.setattr(PolynomialBasis, "fit", built)
    path, _, _ = regression_csv
    for degree in (["--degree", "50"], ["--degree", "auto", "--max-degree", "60"]):
        assert main(["fit", "blr", "--data", str(path), "--target", "y", "--basis", "polynomial",
                     *degree, "--out", str(tmp_path / "m.safetensors")]) == 2
        err = _error_line(capsys)
        # C(3 + 50, 3) - 1 = 23,425 monomials of degree 1..50 in 3 variables
        n = 23_425 if degree[1] == "50" else 39_710
        assert f"{n:,} monomial features" in err and "GiB" in err
        # the memory named is that of Phi (60, M) and two M x M float64 matrices
        assert f"{8 * (60 * n + 2 * n * n) / 2**30:.1f} GiB" in err


def test_polynomial_feature_count_matches_the_basis():
    from bayesdl.cli.fit_blr import check_polynomial_size

    for d, degree in [(1, 7), (3, 4), (5, 3)]:
        M = PolynomialBasis(degree=degree).fit(np.zeros((2, d))).powers_.shape[0]
        check_polynomial_size(10, d, degree)  # small: accepted
        with pytest.raises(ValueError, match=f"gives {M:,} monomial features"):
            check_polynomial_size(2**30, d, degree)  # too many rows for the same basis


# -- fit gmm --components ----------------------------------------------------------------------
def test_components_range_is_validated_before_any_fit(tmp_path, capsys, monkeypatch):
    path = _write_csv(tmp_path / "five.csv", ["a", "b"], np.random.default_rng(0).normal(size=(5, 2)))
    fits = []
    monkeypatch.setattr(GaussianMixture, "fit", lambda self, X, y=None: fits.append(self))
    out = str(tmp_path / "g.safetensors")
    assert main(["fit", "gmm", "--data", str(path), "--components", "1..10", "--out", out]) == 2
    err = _error_line(capsys)
    assert "10 components is more than the 5 rows" in err and "at most 5" in err
    assert fits == []
    assert main(["fit", "gmm", "--data", str(path), "--components", "3..1", "--out", out]) == 2
    assert "the range is reversed" in _error_line(capsys)
    assert main(["fit", "vbgmm", "--data", str(path), "--components", "6", "--out", out]) == 2
    assert "6 components is more than the 5 rows" in _error_line(capsys)
    assert fits == []


def test_each_warning_is_shown_once_over_a_range_of_components(tmp_path, capsys):
    X = np.random.default_rng(0).normal(size=(5, 2))
    path = _write_csv(tmp_path / "five.csv", ["a", "b"], X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["fit", "gmm", "--data", str(path), "--components", "2..4", "--max-iter",
                     "10", "--out", str(tmp_path / "g.safetensors")]) == 0
    sites = [(w.category, w.filename, w.lineno) for w in caught]
    assert len(sites) == len(set(sites)) == 2  # a collapsed component; no convergence
    # the repeats are counted, not dropped silently: the count is what the fits raise
    with warnings.catch_warnings(record=True) as direct:
        warnings.simplefilter("always")
        for k in range(2, 5):
            GaussianMixture(k, random_state=0, max_iter=10).fit(X)
    assert len(direct) > 10
    for w in caught:
        n = sum((d.category, d.filename, d.lineno) == (w.category, w.filename, w.lineno)
                for d in direct)
        assert (f"[{n} such warnings over the fits" in str(w.message)) == (n > 1)


# -- missing cells ---------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["", "nan", "NaN", " ", "inf"])
def test_missing_cell_is_one_line_naming_line_and_column(tmp_path, regression_csv, capsys, cell):
    path, X, y = regression_csv
    rows = [r for r in csv.reader(open(path))]
    rows[5][1] = cell  # data row 5 is line 6 of the file; column "b"
    bad = _write_csv(tmp_path / "bad.csv", rows[0], rows[1:])
    out = str(tmp_path / "m.safetensors")
    assert main(["fit", "blr", "--data", str(bad), "--target", "y", "--out", out]) == 2
    assert f"{bad}, line 6, column 'b': missing value" in _error_line(capsys)
    assert main(["fit", "blr", "--data", str(path), "--target", "y", "--out", out]) == 0
    capsys.readouterr()
    assert main(["predict", "--model", out, "--data", str(bad), "--out", str(tmp_path / "p.csv")]) == 2
    assert f"{bad}, line 6, column 'b': missing value" in _error_line(capsys)


def test_missing_target_and_unused_columns(tmp_path, regression_csv, capsys):
    path, X, y = regression_csv
    rows = [r for r in csv.reader(open(path))]
    rows[2][3] = ""  # the target of data row 2 (line 3)
    with open(tmp_path / "bad.csv", "w", newline="") as f:  # with a blank line: line numbers
        f.write(",".join(rows[0]) + "\n\n")                  # count it, as an editor does
        csv.writer(f).writerows(rows[1:])
    bad = tmp_path / "bad.csv"
    out = str(tmp_path / "m.safetensors")
    assert main(["fit", "blr", "--data", str(bad), "--target", "y", "--out", out]) == 2
    assert f"{bad}, line 4, column 'y': missing value" in _error_line(capsys)
    # predict ignores the target column, so an empty target there is fine
    assert main(["fit", "blr", "--data", str(path), "--target", "y", "--out", out]) == 0
    assert main(["predict", "--model", out, "--data", str(bad), "--out", str(tmp_path / "p.csv")]) == 0
    # ... but evaluate needs it
    capsys.readouterr()
    assert main(["evaluate", "--model", out, "--data", str(bad), "--target", "y",
                 "--figure", str(tmp_path / "f.png")]) == 2
    assert f"{bad}, line 4, column 'y': missing value" in _error_line(capsys)


def test_missing_value_in_a_npy_file_names_row_and_column(tmp_path, regression_csv, capsys):
    path, X, _ = regression_csv
    out = str(tmp_path / "m.safetensors")
    assert main(["fit", "blr", "--data", str(path), "--target", "y", "--out", out]) == 0
    X = X.copy()
    X[7, 2] = np.nan
    np.save(tmp_path / "x.npy", X)
    capsys.readouterr()
    assert main(["predict", "--model", out, "--data", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert "row 7, column 2: missing value" in _error_line(capsys)


# -- predict --model with a file that is not a model -----------------------------------------
@pytest.mark.parametrize("kind", ["pickle", "csv"])
def test_predict_with_a_pickle_or_csv_as_model(tmp_path, regression_csv, capsys, kind):
    path, X, y = regression_csv
    fake = tmp_path / f"model.{kind}"
    if kind == "pickle":
        fake.write_bytes(pickle.dumps(BayesianLinearRegression().fit(X, y)))
    else:
        fake.write_bytes(path.read_bytes())
    assert main(["predict", "--model", str(fake), "--data", str(path),
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert f"{fake} is not a bayesdl model file (safetensors)" in _error_line(capsys)


# -- permissions of what the CLI writes ------------------------------------------------------
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_cli_outputs_honour_the_umask(tmp_path, regression_csv, mask, mode):
    from matplotlib.figure import Figure

    from bayesdl.report import Section, write_report

    path, _, _ = regression_csv
    old = os.umask(mask)
    try:
        model, pred, fig = tmp_path / "m.safetensors", tmp_path / "p.csv", tmp_path / "f.png"
        assert main(["fit", "blr", "--data", str(path), "--target", "y", "--out", str(model)]) == 0
        assert main(["predict", "--model", str(model), "--data", str(path), "--out", str(pred)]) == 0
        assert main(["evaluate", "--model", str(model), "--data", str(path), "--target", "y",
                     "--figure", str(fig)]) == 0
        figure = Figure()
        figure.subplots().plot([0, 1])
        index = write_report(tmp_path / "report", [("s", Section(title="s", figures=[("c", figure)]))])
        written = [model, pred, fig, index]
        for f in written:
            assert stat.S_IMODE(f.stat().st_mode) == mode, (f, oct(f.stat().st_mode))
    finally:
        os.umask(old)


# -- bayesdl --help is cheap -----------------------------------------------------------------
def test_help_imports_neither_torch_nor_the_model_families():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    code = ("import sys; from bayesdl.cli import build_parser; build_parser(); "
            "print(' '.join(m for m in ('torch', 'sklearn', 'scipy', 'matplotlib', "
            "'bayesdl.io', 'bayesdl.linear_model') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and run.stdout.strip() == "", run.stdout + run.stderr
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "bayesdl", "--help"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0 and "usage: bayesdl" in run.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()}
    assert "bayesdl.cli" in imported and "torch" not in imported and "numpy" not in imported


def test_fit_help_still_lists_every_model(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = capsys.readouterr().out
    from bayesdl.cli.fit import FIT_MODELS

    assert all(f"    {name} " in out for name in FIT_MODELS)
    with pytest.raises(SystemExit):
        main(["fit", "blr", "--help"])
    out = capsys.readouterr().out
    assert "--basis" in out and "``" not in out


def test_load_and_save_are_still_public_names():
    assert bayesdl.load.__module__ == "bayesdl.io" and bayesdl.save.__module__ == "bayesdl.io"
    from bayesdl import load, save  # noqa: F401
    with pytest.raises(AttributeError):
        bayesdl.no_such_name  # noqa: B018


# -- other first-hour mistakes ---------------------------------------------------------------
def test_output_path_that_is_a_folder_or_unwritable_is_one_line(tmp_path, regression_csv, capsys):
    path, _, _ = regression_csv
    assert main(["fit", "blr", "--data", str(path), "--target", "y", "--out", str(tmp_path)]) == 2
    assert f"{tmp_path} is a folder" in _error_line(capsys)
    (tmp_path / "file").write_text("x")
    assert main(["fit", "blr", "--data", str(path), "--target", "y",
                 "--out", str(tmp_path / "file" / "m.safetensors")]) == 2
    _error_line(capsys)  # the parent is a file: an OSError, one line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "train.csv"]


def test_evaluate_figure_format_follows_its_suffix(tmp_path, regression_csv, capsys):
    path, _, _ = regression_csv
    model = str(tmp_path / "m.safetensors")
    assert main(["fit", "blr", "--data", str(path), "--target", "y", "--out", model]) == 0
    for suffix, magic in [(".pdf", b"%PDF-"), (".svg", b"<?xml"), (".png", b"\x89PNG")]:
        fig = tmp_path / f"f{suffix}"
        assert main(["evaluate", "--model", model, "--data", str(path), "--target", "y",
                     "--figure", str(fig)]) == 0
        assert fig.read_bytes().startswith(magic)
    capsys.readouterr()
    assert main(["evaluate", "--model", model, "--data", str(path), "--target", "y",
                 "--figure", str(tmp_path / "f.xyz")]) == 2
    assert "Format 'xyz' is not supported" in _error_line(capsys)


def test_max_degree_below_one_is_named(tmp_path, regression_csv, capsys):
    path, _, _ = regression_csv
    assert main(["fit", "blr", "--data", str(path), "--target", "y", "--basis", "polynomial",
                 "--degree", "auto", "--max-degree", "0", "--out", str(tmp_path / "m")]) == 2
    assert "--max-degree must be at least 1, got 0" in _error_line(capsys)
