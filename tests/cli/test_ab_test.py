"""``bayesdl ab-test`` in-process: printed numbers agree with compare_beta_arms; CSV input; errors."""

import re

import numpy as np
import pytest

from bayesdl.cli import main
from bayesdl.distributions import compare_beta_arms


def _table(out):
    """Parse the per-arm rows into {arm: (posterior a, b, mean, lower, upper, P(best), loss)}."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"(\S+)\s+\S+/\S+\s+Beta\(([\d.]+), ([\d.]+)\)\s+([\d.]+)\s+\[([\d.]+), ([\d.]+)\]\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            rows[m.group(1)] = tuple(float(v) for v in m.groups()[1:])
    return rows


def test_ab_test_from_counts(capsys):
    assert main(["ab-test", "--successes", "120,135", "--trials", "1000,1000"]) == 0
    out = capsys.readouterr().out
    ref = compare_beta_arms([120, 135], [1000, 1000])
    rows = _table(out)
    assert list(rows) == ["A", "B"]
    for i, arm in enumerate("AB"):
        a, b, mean, lo, hi, p_best, loss = rows[arm]
        assert (a, b) == (ref.a[i], ref.b[i])
        np.testing.assert_allclose([mean, lo, hi, p_best], [ref.mean[i], ref.lower[i], ref.upper[i], ref.prob_best[i]],
                                   atol=1e-4)
        np.testing.assert_allclose(loss, ref.expected_loss[i], atol=1e-6)
    assert f"P(B > A) = {ref.prob_best[1]:.4f}" in out
    assert "Lowest expected loss: B" in out


def test_ab_test_from_summary_csv_and_per_visitor_csv(tmp_path, capsys):
    summary = tmp_path / "arms.csv"
    summary.write_text("arm,successes,trials\ncontrol,120,1000\nvariant,135,1000\n")
    assert main(["ab-test", "--csv", str(summary), "--level", "0.9", "--prior", "2,8"]) == 0
    out = capsys.readouterr().out
    ref = compare_beta_arms([120, 135], [1000, 1000], names=["control", "variant"], prior_a=2, prior_b=8, level=0.9)
    rows = _table(out)
    np.testing.assert_allclose(rows["variant"][3:5], [ref.lower[1], ref.upper[1]], atol=1e-4)
    assert "90% credible interval" in out and "P(variant > control)" in out

    visitors = tmp_path / "visitors.csv"
    rng = np.random.default_rng(0)
    arms = rng.choice(["old", "new"], size=300)
    outcome = rng.binomial(1, np.where(arms == "new", 0.3, 0.2))
    visitors.write_text("group,converted\n" + "".join(f"{a},{o}\n" for a, o in zip(arms, outcome)))
    assert main(["ab-test", "--csv", str(visitors), "--arm-column", "group", "--outcome-column", "converted"]) == 0
    rows = _table(capsys.readouterr().out)
    first = arms[0]
    a, b = rows[first][:2]
    assert a == 1 + outcome[arms == first].sum() and a + b == 2 + (arms == first).sum()


@pytest.mark.parametrize("argv,match", [
    (["--successes", "120,1350", "--trials", "1000,1000"], "more successes"),
    (["--successes", "120", "--trials", "1000,1000"], "1 success counts but 2"),
    (["--successes", "12x,3", "--trials", "1000,1000"], "comma-separated numbers"),
    (["--successes", "1,2", "--trials", "10,10", "--prior", "0,1"], "two positive numbers"),
    (["--trials", "10,10"], "give --successes and --trials"),
    (["--csv", "does-not-exist.csv"], "no such file"),
])
def test_ab_test_errors(argv, match, capsys):
    assert main(["ab-test", *argv]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_ab_test_hpd_interval(capsys):
    assert main(["ab-test", "--successes", "0,3", "--trials", "20,20", "--interval", "hpd"]) == 0
    out = capsys.readouterr().out
    ref = compare_beta_arms([0, 3], [20, 20], interval="hpd")
    rows = _table(out)
    assert "95% HPD credible interval" in out
    np.testing.assert_allclose(rows["A"][3:5], [ref.lower[0], ref.upper[0]], atol=1e-4)
    assert rows["A"][3] == 0.0  # Beta(1, 21) is decreasing: the HPD interval starts at 0


def test_ab_test_csv_missing_columns(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("name,conv,n\nA,1,10\nB,2,10\n")
    assert main(["ab-test", "--csv", str(path)]) == 2
    assert "missing column(s)" in capsys.readouterr().err
