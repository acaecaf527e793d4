"""BLR fit (evidence maximisation) vs scikit-learn BayesianRidge, n=200,000, d=100, float64.

Both fit the same data to convergence; the coefficients are compared before the timings are
trusted. Run: python benchmarks/bench_linear_model.py [--n N] [--d D] [--repeats R]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import BayesianRidge

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import compare, machine  # noqa: E402

from bayesdl.linear_model import BayesianLinearRegression  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n, args.d))
    w = rng.normal(size=args.d) * (rng.uniform(size=args.d) < 0.5)  # half the weights are zero
    y = X @ w + 0.5 * rng.normal(size=args.n)

    ours = BayesianLinearRegression(tol=1e-10, max_iter=1000)
    anchor = BayesianRidge(tol=1e-10, max_iter=1000)
    ours.fit(X, y)
    anchor.fit(X, y)
    rel = np.max(np.abs(ours.coef_ - anchor.coef_)) / np.max(np.abs(anchor.coef_))
    print(machine())
    print(f"max |coef difference| / max |coef| = {rel:.2e}; alpha_ rel diff "
          f"{abs(ours.beta_ / anchor.alpha_ - 1):.2e}, lambda_ rel diff {abs(ours.alpha_ / anchor.lambda_ - 1):.2e}")
    if rel > 1e-6:
        raise SystemExit("coefficients differ: the timing comparison is not like for like")
    compare(f"BLR fit n={args.n} d={args.d} float64", lambda: ours.fit(X, y), lambda: anchor.fit(X, y),
            anchor_name="sklearn BayesianRidge", repeats=args.repeats)


if __name__ == "__main__":
    main()
