"""The command line, end to end on files the tests write (in-process via bayesdl.cli.main)."""

import csv

import numpy as np
import pytest
from scipy.stats import norm

import bayesdl
from bayesdl.cli import COMMANDS, build_parser, main
from bayesdl.cli.fit import FIT_MODELS
from bayesdl.linear_model import BayesianLinearRegression


def _write_csv(path, columns):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerows(zip(*columns.values()))


def _read_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=float)


@pytest.fixture
def train_csv(tmp_path):
    rng = np.random.default_rng(0)
    x1, x2 = rng.uniform(-1, 1, 80), rng.uniform(-1, 1, 80)
    y = 1.5 * x1 - 0.5 * x2 + 0.2 + 0.1 * rng.normal(size=80)
    path = tmp_path / "train.csv"
    _write_csv(path, {"x1": x1, "x2": x2, "y": y})
    return path, np.c_[x1, x2], y


def test_fit_blr_then_predict_matches_the_python_api(tmp_path, train_csv, capsys):
    path, X, y = train_csv
    model_path = tmp_path / "model.safetensors"
    assert main(["fit", "blr", "--data", str(path), "--target", "y", "--out", str(model_path)]) == 0
    assert "log evidence" in capsys.readouterr().out
    # predict on a file whose columns are in another order and which still holds the target
    new = tmp_path / "new.csv"
    _write_csv(new, {"y": y[:10], "x2": X[:10, 1], "x1": X[:10, 0]})
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(model_path), "--data", str(new), "--out", str(out),
                 "--interval", "0.9"]) == 0
    header, values = _read_csv(out)
    assert header == ["mean", "std", "lower", "upper"]
    ref_mean, ref_std = BayesianLinearRegression().fit(X, y).predict(X[:10], return_std=True)
    np.testing.assert_allclose(values[:, 0], ref_mean, rtol=1e-12)
    np.testing.assert_allclose(values[:, 1], ref_std, rtol=1e-12)
    np.testing.assert_allclose(values[:, 3] - values[:, 0], norm.ppf(0.95) * ref_std, rtol=1e-12)


@pytest.mark.parametrize("basis", [["--basis", "gaussian", "--n-centers", "5"],
                                   ["--basis", "polynomial", "--degree", "auto", "--max-degree", "4"],
                                   ["--basis", "sigmoid", "--alpha", "1.0", "--beta", "50"]])
def test_fit_blr_with_bases_and_npy_prediction(tmp_path, train_csv, basis):
    path, X, _ = train_csv
    model_path = tmp_path / "m.safetensors"
    assert main(["fit", "blr", "--data", str(path), "--target", "y", "--out", str(model_path), *basis]) == 0
    np.save(tmp_path / "x.npy", X[:7])
    out = tmp_path / "p.csv"
    assert main(["predict", "--model", str(model_path), "--data", str(tmp_path / "x.npy"),
                 "--out", str(out)]) == 0
    model = bayesdl.load(model_path)
    _, values = _read_csv(out)
    np.testing.assert_allclose(values[:, 0], model.predict(X[:7]), rtol=1e-12)


def test_cli_errors_are_one_clear_line(tmp_path, train_csv, capsys):
    path, _, _ = train_csv
    assert main(["fit", "blr", "--data", str(path), "--target", "nope", "--out", str(tmp_path / "m")]) == 2
    assert "Column 'nope' is not in" in capsys.readouterr().err
    model_path = tmp_path / "m.safetensors"
    main(["fit", "blr", "--data", str(path), "--target", "y", "--out", str(model_path)])
    bad = tmp_path / "bad.csv"
    _write_csv(bad, {"x1": [0.0]})
    assert main(["predict", "--model", str(model_path), "--data", str(bad), "--out", str(tmp_path / "p")]) == 2
    assert "lacks the model's input column(s) ['x2']" in capsys.readouterr().err
    model_path.write_bytes(model_path.read_bytes()[:50])
    assert main(["predict", "--model", str(model_path), "--data", str(path), "--out", str(tmp_path / "p")]) == 2
    assert "truncated" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit", "blr", "--data", str(path), "--target", "y", "--out", "m", "--degree", "x"])


def _all_parsers(parser):
    parser.complete()  # add the arguments a command defers until it is used
    yield parser
    for action in parser._actions:
        if isinstance(action.choices, dict):  # a sub-parsers action
            for sub in action.choices.values():
                yield from _all_parsers(sub)


def test_every_command_has_useful_help(capsys):
    parsers = list(_all_parsers(build_parser()))
    assert len(parsers) >= 1 + len(COMMANDS) + len(FIT_MODELS)
    for p in parsers:
        text = p.format_help()
        assert p.description or p.prog == "bayesdl", p.prog
        for action in p._actions:
            if action.option_strings and action.dest not in ("help", "version"):
                assert action.help, f"{p.prog} {action.option_strings} has no help"
        assert "usage:" in text
        # plain text: no reST markup from the docstrings the descriptions come from
        assert "``" not in text and ":func:`" not in text and ":class:`" not in text, p.prog


def test_demo_quick_writes_the_report_with_the_blr_section(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    assert str((out / "index.html").resolve()) in capsys.readouterr().out
    html = (out / "index.html").read_text()
    assert "Bayesian linear regression" in html and "class=\"error\"" not in html
    # one self-contained file: the five figures of the section are embedded in it
    blr = html.split('<h2 id="linear_model">')[1].split("<h2 ")[0]
    assert blr.count("<figure") == 5 and blr.count("<svg") + blr.count('src="data:image/png') == 5
    assert [p.name for p in out.iterdir()] == ["index.html"]
