"""``bayesdl ab-test``: Bayesian A/B test of conversion rates with Beta-Binomial updating.

Each arm's conversion rate gets a Beta(a, b) prior (uniform by default) and the posterior
Beta(a + successes, b + failures). Printed per arm: the posterior, its mean and credible
interval (equal-tailed, or highest posterior density with --interval hpd), the probability that the arm is best (for two arms, P(B > A)) and the
expected loss of choosing it (the conversion rate given up on average if it is not the best).

Input, either
  --successes 120,135 --trials 1000,1000 [--names control,variant]
or a CSV file, either one row per arm (columns named by --arm-column, --successes-column,
--trials-column; defaults arm, successes, trials), or one row per visitor with --outcome-column
naming a 0/1 column (grouped by --arm-column).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "ab-test",
        help="Bayesian A/B test of conversion rates (Beta posteriors, P(B > A), expected loss)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--successes", help="comma-separated successes per arm, e.g. 120,135")
    p.add_argument("--trials", help="comma-separated trials per arm, e.g. 1000,1000")
    p.add_argument("--names", help="comma-separated arm names (default A,B,...)")
    p.add_argument("--csv", help="CSV file instead of --successes/--trials")
    p.add_argument("--arm-column", default="arm", help="CSV column naming the arm (default: %(default)s)")
    p.add_argument("--successes-column", default="successes",
                   help="CSV column of success counts per arm (default: %(default)s)")
    p.add_argument("--trials-column", default="trials", help="CSV column of trial counts per arm (default: %(default)s)")
    p.add_argument("--outcome-column", help="CSV column of per-visitor 0/1 outcomes (one row per visitor)")
    p.add_argument("--prior", default="1,1", help="Beta prior a,b shared by all arms (default: %(default)s)")
    p.add_argument("--level", type=float, default=0.95, help="credible-interval level (default: %(default)s)")
    p.add_argument("--interval", choices=["equal-tailed", "hpd"], default="equal-tailed",
                   help="credible interval: equal tails or highest posterior density (default: %(default)s)")
    p.set_defaults(func=run)


def _numbers(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"{option} must be comma-separated numbers, e.g. 120,135; got {text!r}.") from None


def _read_csv(args) -> tuple[list[str], list[float], list[float]]:
    path = Path(args.csv)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file.")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: the CSV has no data rows.")
    needed = [args.arm_column] + ([args.outcome_column] if args.outcome_column
                                  else [args.successes_column, args.trials_column])
    missing = [c for c in needed if c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; the file has {list(rows[0])}. Name the "
                         "columns with --arm-column/--successes-column/--trials-column or --outcome-column.")
    try:
        if args.outcome_column:
            # one row per visitor: successes = sum of outcomes, trials = rows per arm
            names = list(dict.fromkeys(r[args.arm_column] for r in rows))
            outcomes = {n: [float(r[args.outcome_column]) for r in rows if r[args.arm_column] == n] for n in names}
            bad = [v for vs in outcomes.values() for v in vs if v not in (0.0, 1.0)]
            if bad:
                raise ValueError(f"{path}: column {args.outcome_column!r} must hold 0/1 outcomes; found {bad[0]:g}.")
            return names, [sum(outcomes[n]) for n in names], [len(outcomes[n]) for n in names]
        return ([r[args.arm_column] for r in rows], [float(r[args.successes_column]) for r in rows],
                [float(r[args.trials_column]) for r in rows])
    except ValueError as e:
        if str(path) in str(e):
            raise
        raise ValueError(f"{path}: non-numeric value in a count column ({e}).") from None


def run(args) -> int:
    import numpy as np

    from ..distributions import compare_beta_arms

    if args.csv:
        if args.successes or args.trials:
            raise ValueError("give either --csv or --successes/--trials, not both.")
        names, successes, trials = _read_csv(args)
    else:
        if not (args.successes and args.trials):
            raise ValueError("give --successes and --trials (e.g. --successes 120,135 --trials 1000,1000) or --csv FILE.")
        successes, trials = _numbers(args.successes, "--successes"), _numbers(args.trials, "--trials")
        names = args.names.split(",") if args.names else None
    s, n = np.asarray(successes), np.asarray(trials)
    if len(s) != len(n):
        raise ValueError(f"got {len(s)} success counts but {len(n)} trial counts; give one of each per arm.")
    if (s < 0).any() or (s != np.round(s)).any() or (n != np.round(n)).any():
        raise ValueError("successes and trials must be non-negative whole numbers.")
    if (s > n).any():
        i = int(np.argmax(s > n))
        raise ValueError(f"arm {i + 1} has more successes ({s[i]:g}) than trials ({n[i]:g}).")
    prior = _numbers(args.prior, "--prior")
    if len(prior) != 2 or min(prior) <= 0:
        raise ValueError(f"--prior must be two positive numbers a,b; got {args.prior!r}.")
    r = compare_beta_arms(s, n, names=names, prior_a=prior[0], prior_b=prior[1], level=args.level,
                          interval=args.interval.replace("-", "_"))
    pct = f"{100 * args.level:g}%" + (" HPD" if args.interval == "hpd" else "")
    width = max(4, *(len(x) for x in r.names))
    print(f"Beta({prior[0]:g}, {prior[1]:g}) prior; posterior per arm:")
    print(f"{'arm':<{width}}  {'successes/trials':>16}  {'posterior':>22}  {'mean':>8}  "
          f"{pct + ' credible interval':>24}  {'P(best)':>8}  {'expected loss':>13}")
    for i, name in enumerate(r.names):
        post = f"Beta({r.a[i]:g}, {r.b[i]:g})"
        print(f"{name:<{width}}  {f'{s[i]:g}/{n[i]:g}':>16}  {post:>22}  {r.mean[i]:8.4f}  "
              f"{f'[{r.lower[i]:.4f}, {r.upper[i]:.4f}]':>24}  {r.prob_best[i]:8.4f}  {r.expected_loss[i]:13.6f}")
    if len(r.names) == 2:
        print(f"P({r.names[1]} > {r.names[0]}) = {r.prob_best[1]:.4f}")
    best = int(np.argmin(r.expected_loss))
    print(f"Lowest expected loss: {r.names[best]} ({r.expected_loss[best]:.6f} conversion rate given up on average)")
    return 0
