"""fit_mle (Minka's Newton iterations) vs scipy.stats ``fit`` for Gamma and Beta, n=1,000,000, float64.

Both estimate the same data to convergence; the estimates are compared before the timings are
trusted. Run: python benchmarks/bench_distributions.py [--n N] [--repeats R]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import compare, machine  # noqa: E402

from bayesdl.distributions import fit_mle  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(machine())

    x = rng.gamma(2.5, 1 / 1.5, size=args.n)
    ours = fit_mle("gamma", x)
    a, _, scale = scipy.stats.gamma.fit(x, floc=0)
    print(f"Gamma: rel. difference shape {abs(ours.concentration.item() / a - 1):.1e}, "
          f"rate {abs(ours.rate.item() * scale - 1):.1e}")
    compare(f"Gamma MLE, n={args.n}", lambda: fit_mle("gamma", x), lambda: scipy.stats.gamma.fit(x, floc=0),
            anchor_name="scipy.stats.gamma.fit(floc=0)", repeats=args.repeats)

    x = rng.beta(0.8, 2.2, size=args.n)
    ours = fit_mle("beta", x)
    sa, sb, _, _ = scipy.stats.beta.fit(x, floc=0, fscale=1)
    print(f"Beta: rel. difference a {abs(ours.concentration1.item() / sa - 1):.1e}, "
          f"b {abs(ours.concentration0.item() / sb - 1):.1e}")
    compare(f"Beta MLE, n={args.n}", lambda: fit_mle("beta", x), lambda: scipy.stats.beta.fit(x, floc=0, fscale=1),
            anchor_name="scipy.stats.beta.fit(floc=0, fscale=1)", repeats=args.repeats)


if __name__ == "__main__":
    main()
