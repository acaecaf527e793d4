"""``bayesdl optimize`` end to end: a Python script as the objective, failures, resume."""

import csv
import math
import json
import sys

import pytest

from bayesdl.cli import main
from bayesdl.cli.optimize import last_number

SCRIPT = """
import sys
x, k, act = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if k == 3:
    sys.exit(1)  # a crashing configuration
print("epoch 1 loss 12.0")
print("final:", (x - 0.3) ** 2 + 0.1 * (k - 2) ** 2 + (0.5 if act == "tanh" else 0.0))
"""


def test_last_number_reads_the_final_number_only():
    assert last_number("epoch10 loss 3.5\nval=1e-3\n") == 1e-3
    assert last_number("information only") is None
    assert last_number("x -2.5") == -2.5


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "f.py").write_text(SCRIPT)
    (tmp_path / "space.json").write_text(json.dumps({
        "x": {"type": "real", "low": -1.0, "high": 1.0},
        "k": {"type": "integer", "low": 0, "high": 4},
        "act": {"type": "categorical", "categories": ["relu", "tanh"]}}))
    return tmp_path


def _cmd(tmp_path, calls, log):
    return ["optimize", "--space", str(tmp_path / "space.json"), "--calls", str(calls),
            "--initial", "5", "--log", str(log), "--", sys.executable, str(tmp_path / "f.py"),
            "{x}", "{k}", "{act}"]


def test_optimize_finds_the_minimum_logs_failures_and_resumes(setup, capsys):
    log = setup / "log.csv"
    assert main(_cmd(setup, 8, log)) == 0
    rows = list(csv.DictReader(open(log)))
    assert len(rows) == 8
    assert main(_cmd(setup, 14, log)) == 0  # resumes: 6 more runs, not 14
    rows = list(csv.DictReader(open(log)))
    assert len(rows) == 14
    assert rows[:8] == list(csv.DictReader(open(log)))[:8]
    failed = [r for r in rows if r["k"] == "3"]
    assert all(r["status"] == "exit 1" and r["objective"] == "nan" for r in failed)
    points = [(r["x"], r["k"], r["act"]) for r in rows]
    assert len(set(points)) == len(points)
    assert len(failed) <= 4  # the region around a crash is penalised, not retried
    values = [float(r["objective"]) for r in rows if r["status"] == "ok"]
    initial = [float(r["objective"]) for r in rows[:5] if r["status"] == "ok"]
    assert min(values) < min(initial)  # the GP phase improved on the Sobol design
    out = capsys.readouterr().out
    assert f"best {min(values):.6g}" in out


def test_optimize_bad_input_is_one_line(setup, capsys):
    assert main(["optimize", "--space", str(setup / "space.json"), "--calls", "3", "--",
                 sys.executable, "f.py", "{y}"]) == 2
    assert "{y} which is not a dimension" in capsys.readouterr().err
    (setup / "bad.json").write_text(json.dumps({"x": {"type": "real", "low": 1, "high": 0}}))
    assert main(["optimize", "--space", str(setup / "bad.json"), "--", "true"]) == 2
    assert "inverted" in capsys.readouterr().err
    assert main(["optimize", "--space", str(setup / "space.json"), "--acq", "EIX", "--",
                 "true"]) == 2
    assert "unknown acquisition" in capsys.readouterr().err


def test_last_number_reads_nan_and_inf_as_the_final_number():
    """A run ending on "loss: nan" failed; the earlier "epoch 3" is not its objective."""
    assert math.isnan(last_number("epoch 3 loss nan"))
    assert last_number("epoch 3 loss -inf") == -math.inf
    assert last_number("information 2.5 infinite") == 2.5  # words holding "inf" are not numbers


QUADRATIC = ("import sys; x = float(sys.argv[1]); d = {'offset': 1.0}; "
             "print('loss', 'nan' if x > 0.8 else (x - 0.3) ** 2 + d['offset'])")


def _quadratic_cmd(tmp_path, calls, log):
    (tmp_path / "s.json").write_text(json.dumps({
        "x": {"type": "real", "low": 0.0, "high": 1.0},
        "c": {"type": "categorical", "categories": ["a,b", "c"]}}))
    return ["optimize", "--space", str(tmp_path / "s.json"), "--calls", str(calls),
            "--initial", "5", "--log", str(log), "--", sys.executable, "-c", QUADRATIC,
            "{x}", "{c}"]


def test_a_run_resumed_in_the_initial_design_equals_the_uninterrupted_one(tmp_path):
    """Resuming re-tells the log to a fresh optimiser: the Sobol design must go on after the
    logged points (it used to start over and evaluate them again). Also: braces that are no
    placeholder stay as typed, a category holding a comma survives the CSV, nan fails."""
    assert main(_quadratic_cmd(tmp_path, 2, tmp_path / "resumed.csv")) == 0
    assert main(_quadratic_cmd(tmp_path, 6, tmp_path / "resumed.csv")) == 0
    assert main(_quadratic_cmd(tmp_path, 6, tmp_path / "whole.csv")) == 0
    resumed = list(csv.DictReader(open(tmp_path / "resumed.csv")))
    assert resumed == list(csv.DictReader(open(tmp_path / "whole.csv")))
    assert len({(r["x"], r["c"]) for r in resumed}) == 6
    assert {r["c"] for r in resumed} <= {"a,b", "c"}
    for r in resumed:
        ok = float(r["x"]) <= 0.8
        assert r["status"] == ("ok" if ok else "not finite")
        if ok:
            assert float(r["objective"]) == pytest.approx((float(r["x"]) - 0.3) ** 2 + 1.0)


def test_ctrl_c_stops_cleanly_with_the_log_kept(setup, monkeypatch, capsys):
    import bayesdl.cli.optimize as cli
    runs = []

    def evaluate(argv, timeout):
        if len(runs) == 2:
            raise KeyboardInterrupt
        runs.append(argv)
        return 1.0 + len(runs), "ok"

    monkeypatch.setattr(cli, "_evaluate", evaluate)
    log = setup / "log.csv"
    assert main(_cmd(setup, 8, log)) == 130
    assert len(list(csv.DictReader(open(log)))) == 2
    assert "interrupted: 2 evaluations" in capsys.readouterr().err
