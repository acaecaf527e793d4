"""GaussianHMM Baum-Welch vs hmmlearn: diag covariances, K=8 states, d=4, 1,000 sequences of
200 steps, 20 iterations from the same initial parameters (tol=0 in both), float64.

The final log-likelihoods are compared first (they must agree to 1e-6 relative), then both
fits are timed in this process. Run: python benchmarks/bench_hmm.py [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import compare, machine  # noqa: E402

from bayesdl.hmm import GaussianHMM  # noqa: E402

warnings.simplefilter("ignore", ConvergenceWarning)  # fixed iteration counts, by design
K, D, N_SEQ, T, N_ITER = 8, 4, 1000, 200, 20


def problem(seed=0):
    """Sequences from a random 8-state chain, and a perturbed start for both libraries."""
    rng = np.random.RandomState(seed)
    trans = rng.dirichlet(np.ones(K) + 8 * np.eye(K)[0], size=K)
    means = rng.randn(K, D) * 3
    z = np.empty(N_SEQ * T, dtype=int)
    lengths = [T] * N_SEQ
    for s in range(N_SEQ):
        z[s * T] = rng.randint(K)
        for t in range(1, T):
            z[s * T + t] = rng.choice(K, p=trans[z[s * T + t - 1]])
    X = means[z] + rng.randn(N_SEQ * T, D)
    start = dict(startprob_=np.full(K, 1 / K), transmat_=np.full((K, K), 1 / K),
                 means_=means + rng.randn(K, D), covars_=np.full((K, D), 2.0))
    return X, lengths, start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    from hmmlearn.hmm import GaussianHMM as RefHMM

    X, lengths, start = problem()

    def ours():
        m = GaussianHMM(K, covariance_type="diag", init_params="", n_iter=N_ITER, tol=0,
                        device=args.device)
        for name, value in start.items():
            setattr(m, name, value.copy())
        return m.fit(X, lengths)

    def anchor():
        m = RefHMM(K, covariance_type="diag", init_params="", n_iter=N_ITER, tol=0)
        for name, value in start.items():
            setattr(m, name, value.copy())
        return m.fit(X, lengths)

    a, b = ours(), anchor()
    ll_ours, ll_ref = a.score(X, lengths), b.score(X, lengths)
    print(machine())
    print(f"final log-likelihood: bayesdl {ll_ours:.6f}, hmmlearn {ll_ref:.6f}, "
          f"relative difference {abs(ll_ours - ll_ref) / abs(ll_ref):.2e}")
    if abs(ll_ours - ll_ref) > 1e-6 * abs(ll_ref):
        raise SystemExit("the fits disagree; not timing them")
    compare(f"GaussianHMM diag K={K} d={D}, {N_SEQ} x {T} steps, {N_ITER} Baum-Welch iterations "
            f"({args.device})", ours, anchor, anchor_name="hmmlearn", warmup=0,
            repeats=args.repeats)


if __name__ == "__main__":
    main()
